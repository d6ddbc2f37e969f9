//! Any text as the server's TOML configuration file: parsed and validated or refused with a
//! message, never a panic; and whatever parses is written back as TOML and parses to the same
//! settings (so `oauth-server` never misreads a file it could have written itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_server::settings::FileConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = FileConfig::parse(text) else {
        return;
    };
    let _ = parsed.engine.validate();
    let _ = parsed.server.validate();

    let mut table = match toml::Table::try_from(&parsed.engine) {
        Ok(table) => table,
        Err(e) => panic!("parsed engine settings do not serialize: {e}"),
    };
    let server = toml::Table::try_from(&parsed.server).expect("server settings serialize");
    table.insert("server".to_owned(), toml::Value::Table(server));
    let written = toml::to_string(&table).expect("a table always serializes");
    let reparsed = FileConfig::parse(&written)
        .unwrap_or_else(|e| panic!("written settings do not parse: {e}\n{written}"));
    assert_eq!(reparsed, parsed, "round trip changed the settings:\n{written}");
});
