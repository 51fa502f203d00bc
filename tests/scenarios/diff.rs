//! A line diff in unified format (`-` expected, `+` actual, a few lines of
//! context around each change), for showing why a scenario failed.

/// One line of the edit script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same(usize, usize),
    Del(usize),
    Ins(usize),
}

/// `expected` and `actual` as a unified diff with `context` lines around
/// each change; empty when they are equal.
pub fn unified(expected: &str, actual: &str, context: usize) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let ops = edit_script(&a, &b);
    let mut out = String::new();
    for (start, end) in hunks(&ops, context) {
        out.push_str(&hunk_header(&ops[start..end]));
        for op in &ops[start..end] {
            match *op {
                Op::Same(i, _) => out.push_str(&format!(" {}\n", a[i])),
                Op::Del(i) => out.push_str(&format!("-{}\n", a[i])),
                Op::Ins(j) => out.push_str(&format!("+{}\n", b[j])),
            }
        }
    }
    if out.is_empty() && expected != actual {
        out.push_str("(the texts differ only in line endings)\n");
    }
    out
}

/// A shortest edit script: common prefix and suffix kept aside, the middle
/// by longest common subsequence.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let pre = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let mut ops: Vec<Op> = (0..pre).map(|i| Op::Same(i, i)).collect();
    ops.extend(lcs_ops(am, bm).into_iter().map(|op| match op {
        Op::Same(i, j) => Op::Same(i + pre, j + pre),
        Op::Del(i) => Op::Del(i + pre),
        Op::Ins(j) => Op::Ins(j + pre),
    }));
    let (a0, b0) = (a.len() - suf, b.len() - suf);
    ops.extend((0..suf).map(|k| Op::Same(a0 + k, b0 + k)));
    ops
}

fn lcs_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let (n, m) = (a.len(), b.len());
    // len[i][j]: LCS length of a[i..] and b[j..].
    let mut len = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            len[i][j] = if a[i] == b[j] {
                len[i + 1][j + 1] + 1
            } else {
                len[i + 1][j].max(len[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Same(i, j));
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || len[i + 1][j] >= len[i][j + 1]) {
            ops.push(Op::Del(i));
            i += 1;
        } else {
            ops.push(Op::Ins(j));
            j += 1;
        }
    }
    ops
}

/// Ranges of `ops` to show: each change with `context` unchanged lines
/// around it, overlapping ranges merged.
fn hunks(ops: &[Op], context: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (k, op) in ops.iter().enumerate() {
        if matches!(op, Op::Same(..)) {
            continue;
        }
        let (start, end) = (k.saturating_sub(context), (k + 1 + context).min(ops.len()));
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => out.push((start, end)),
        }
    }
    out
}

/// `@@ -a,n +b,m @@` for a hunk (1-based line numbers).
fn hunk_header(ops: &[Op]) -> String {
    let first_a = ops.iter().find_map(|op| match *op {
        Op::Same(i, _) | Op::Del(i) => Some(i),
        Op::Ins(_) => None,
    });
    let first_b = ops.iter().find_map(|op| match *op {
        Op::Same(_, j) | Op::Ins(j) => Some(j),
        Op::Del(_) => None,
    });
    let n_a = ops.iter().filter(|op| !matches!(op, Op::Ins(_))).count();
    let n_b = ops.iter().filter(|op| !matches!(op, Op::Del(_))).count();
    format!(
        "@@ -{},{n_a} +{},{n_b} @@\n",
        first_a.map_or(0, |i| i + 1),
        first_b.map_or(0, |j| j + 1)
    )
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn shows_changes_with_context() {
        let a = "1\n2\n3\n4\n5\n6\n7\n8\n";
        let b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        assert_eq!(
            unified(a, b, 1),
            "@@ -4,3 +4,3 @@\n 4\n-5\n+five\n 6\n@@ -8,1 +8,2 @@\n 8\n+9\n"
        );
        assert_eq!(unified(a, a, 3), "");
        assert_eq!(unified("", "x\n", 3), "@@ -0,0 +1,1 @@\n+x\n");
    }
}
