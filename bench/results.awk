# Measurements, and their medians; shared by run.sh and budget.sh, which load it in front of their
# own tables (`awk -f results.awk -f -`).
#
# Input: one line per measurement, its name in the leading words without '=' ("cc oauth-server",
# "peer"), then name=value fields ("rps=41519.3 p99_ms=1.440 ..."). Kept: n[k], how many
# measurements name k (its words joined by SUBSEP) has; v[field, k, i], the i-th one's value;
# order[1..names], the names in the order first seen.
{
  k = ""
  for (f = 1; f <= NF && index($f, "=") == 0; f++) k = (f == 1) ? $f : k SUBSEP $f
  if (!(k in n)) order[++names] = k
  n[k]++
  for (; f <= NF; f++) { split($f, kv, "="); v[kv[1], k, n[k]] = kv[2] }
}

# The median of `field` over the measurements of name k.
function med(field, k,   a, m, i, j, t) {
  m = n[k]
  for (i = 1; i <= m; i++) a[i] = v[field, k, i] + 0
  for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
  return (m % 2) ? a[(m+1)/2] : (a[m/2] + a[m/2+1]) / 2
}
