//! Keeps the checklist in `conformance/README.md` honest.
//!
//! Every item of Part 2 of `rfc-conformance.md` (1 to 149) must have exactly one row, and every row
//! must name at least one test (`path/from/repo/root.rs::function`) or link to a written decision.
//! Every named test must exist and be a test, and every decision link must have its decision
//! written. A renamed or deleted test therefore fails here instead of leaving the table stale.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The number of items in Part 2 of `rfc-conformance.md`.
const ITEMS: u32 = 149;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the conformance crate sits inside the repository")
        .to_path_buf()
}

/// Splits a Markdown table row into its cells; `\|` is a literal pipe inside a cell.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().expect("never empty").push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            _ => out.last_mut().expect("never empty").push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The contents of every backtick code span in `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// GitHub's heading anchor: lower case, only alphanumerics, `-` and `_` kept, spaces become `-`.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Whether `path` holds a test function called `name`: `fn name(` preceded by an attribute
/// that makes it a test (`#[test]`, `#[tokio::test(...)]`, ...).
fn is_test_fn(source: &str, name: &str) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    let signature = format!("fn {name}(");
    lines.iter().enumerate().any(|(i, line)| {
        let line = line.trim_start();
        let line = line.strip_prefix("pub ").unwrap_or(line);
        let line = line.strip_prefix("async ").unwrap_or(line);
        line.starts_with(&signature)
            && lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim())
                .take_while(|l| l.starts_with("#[") || l.starts_with("//") || l.ends_with(")]"))
                .any(|l| l.starts_with("#[") && l.contains("test"))
    })
}

/// Decisions written under `## Decisions`: item number to (anchor, body text).
fn decisions(section: &str) -> BTreeMap<u32, (String, String)> {
    let mut out = BTreeMap::new();
    let mut current: Option<u32> = None;
    for line in section.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            current = heading
                .strip_prefix("Item ")
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.trim().parse().ok());
            if let Some(n) = current {
                out.insert(n, (slug(heading), String::new()));
            }
        } else if line.starts_with("## ") || line.starts_with("<!--") {
            current = None;
        } else if let Some(n) = current {
            let body = &mut out.get_mut(&n).expect("inserted at its heading").1;
            body.push_str(line.trim());
            body.push(' ');
        }
    }
    out
}

/// Every problem with the checklist in `readme`, with test paths resolved against `root`.
fn problems(readme: &str, root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let (table, decided) = readme.split_once("\n## Decisions").unwrap_or((readme, ""));
    let decisions = decisions(decided);
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();

    for row in table.lines().filter(|l| l.starts_with('|')) {
        let cells = cells(row);
        let Ok(item) = cells[0].parse::<u32>() else {
            continue;
        };
        *seen.entry(item).or_default() += 1;
        let Some(evidence) = cells.get(3).filter(|_| cells.len() == 4) else {
            problems.push(format!("item {item}: the row needs exactly four cells"));
            continue;
        };
        let mut tests = 0;
        for span in code_spans(evidence)
            .into_iter()
            .filter(|s| s.contains(".rs"))
        {
            let Some((path, name)) = span.split_once("::") else {
                problems.push(format!("item {item}: `{span}` is not `path.rs::function`"));
                continue;
            };
            match std::fs::read_to_string(root.join(path)) {
                Ok(source) if is_test_fn(&source, name) => tests += 1,
                Ok(_) => problems.push(format!("item {item}: no test `{name}` in {path}")),
                Err(e) => problems.push(format!("item {item}: cannot read {path}: {e}")),
            }
        }
        let linked = evidence.contains(&format!("](#item-{item}-"));
        if linked {
            match decisions.get(&item) {
                Some((anchor, _)) if !evidence.contains(&format!("](#{anchor})")) => problems.push(
                    format!("item {item}: the decision link should be `#{anchor}`"),
                ),
                Some((_, body)) if body.trim().len() < 40 => {
                    problems.push(format!("item {item}: the decision has no real text"))
                }
                Some(_) => {}
                None => problems.push(format!("item {item}: links a decision that is not written")),
            }
        }
        if tests == 0 && !linked {
            problems.push(format!("item {item}: neither a test nor a decision"));
        }
    }

    for item in 1..=ITEMS {
        match seen.get(&item) {
            None => problems.push(format!("item {item}: no row")),
            Some(1) => {}
            Some(n) => problems.push(format!("item {item}: {n} rows")),
        }
    }
    problems.extend(
        seen.keys()
            .filter(|&&n| n == 0 || n > ITEMS)
            .map(|n| format!("item {n}: not in the checklist")),
    );
    problems.extend(
        decisions
            .keys()
            .filter(|n| !seen.contains_key(n))
            .map(|n| format!("decision for item {n}, which has no row")),
    );
    problems
}

#[test]
fn every_checklist_item_has_a_test_or_a_written_decision() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("conformance/README.md")).expect("README");
    let problems = problems(&readme, &root);
    assert!(
        problems.is_empty(),
        "conformance/README.md checklist:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_checker_catches_a_stale_table() {
    let root = repo_root();
    let this = "conformance/tests/checklist.rs";
    let mut readme = String::from("| # | Level | Requirement | Evidence |\n|---|---|---|---|\n");
    for item in 1..=ITEMS {
        let evidence = match item {
            1 => format!("`{this}::the_checker_catches_a_stale_table`"),
            2 => format!("`{this}::no_such_test`"),
            3 => format!("`{this}::problems`"),
            4 => "`conformance/tests/missing.rs::x`".to_string(),
            5 => String::new(),
            6 => "see [decision](#item-6-reason)".to_string(),
            7 => "see [decision](#item-7-wrong-anchor)".to_string(),
            8 => "see [decision](#item-8-short)".to_string(),
            9 => continue,
            10 => format!("`{this}::the_checker_catches_a_stale_table` \\| extra | cell"),
            11 => "see [decision](#item-6-reason)".to_string(),
            _ => format!("`{this}::every_checklist_item_has_a_test_or_a_written_decision`"),
        };
        readme.push_str(&format!(
            "| {item} | MUST | text \\| with a pipe | {evidence} |\n"
        ));
    }
    readme.push_str("| 3 | MUST | twice | `x` |\n");
    readme.push_str(
        "\n## Decisions\n\n### Item 6: Reason\n\nA decision long enough to count as written text.\n\
         \n### Item 7: Other\n\nAnother decision long enough to count as written text.\n\
         \n### Item 8: Short\n\nToo short.\n",
    );
    let found = problems(&readme, &root);
    let expect = [
        "item 2: no test `no_such_test`",
        "item 3: no test `problems`",
        "item 4: cannot read conformance/tests/missing.rs",
        "item 5: neither a test nor a decision",
        "item 7: the decision link should be `#item-7-other`",
        "item 8: the decision has no real text",
        "item 9: no row",
        "item 3: 2 rows",
        "item 10: the row needs exactly four cells",
        "item 11: neither a test nor a decision",
    ];
    for e in expect {
        assert!(
            found.iter().any(|p| p.starts_with(e)),
            "missing {e:?} in {found:#?}"
        );
    }
    assert!(
        !found.iter().any(|p| p.starts_with("item 1:")),
        "{found:#?}"
    );
    assert!(
        !found.iter().any(|p| p.starts_with("item 6:")),
        "{found:#?}"
    );
    assert!(
        !found.iter().any(|p| p.starts_with("item 12:")),
        "{found:#?}"
    );
}
