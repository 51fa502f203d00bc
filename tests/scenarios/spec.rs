//! The committed description of the synthetic kernel the scenarios run
//! against: `kernel/modules.txt` (one module a line: its path, then
//! `key=value` fields) and `kernel/builtin.txt` (one builtin module a line:
//! its path, then `alias=` fields). The format is documented in the header of
//! each file and in `tests/scenarios/README.md`.

/// Keys a module line may carry; every one but `depends` is repeatable.
const MODULE_KEYS: &[&str] = &["depends", "alias", "softdep", "weakdep", "firmware"];

/// One loadable module of the synthetic tree.
#[derive(Debug, Clone)]
pub struct Module {
    /// Path relative to the module directory, with its compression suffix.
    pub path: String,
    /// `key=value` fields in file order (`depends` at most once).
    pub fields: Vec<(String, String)>,
}

/// One builtin module: `modules.builtin` and `modules.builtin.modinfo`.
#[derive(Debug, Clone)]
pub struct Builtin {
    pub path: String,
    pub aliases: Vec<String>,
}

impl Module {
    /// The module name depmod gives it: the basename up to the first `.`,
    /// `-` as `_`.
    pub fn name(&self) -> String {
        modname(&self.path)
    }

    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `depends=` value as written (module names as the build names
    /// them, `-` kept), empty when there is none.
    pub fn depends_field(&self) -> &str {
        self.get_all("depends").next().unwrap_or("")
    }

    /// Dependency module names, normalised.
    pub fn depends(&self) -> Vec<String> {
        self.depends_field()
            .split(',')
            .filter(|d| !d.is_empty())
            .map(modname)
            .collect()
    }

    /// The path without a compression suffix (what `modules.order` holds).
    pub fn uncompressed_path(&self) -> &str {
        let p = self.path.as_str();
        p.strip_suffix(".xz")
            .or_else(|| p.strip_suffix(".zst"))
            .unwrap_or(p)
    }
}

impl Builtin {
    pub fn name(&self) -> String {
        modname(&self.path)
    }
}

/// depmod's module name of a path or name.
pub fn modname(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let end = base.find('.').unwrap_or(base.len());
    base[..end].replace('-', "_")
}

/// Parse `modules.txt`.
pub fn parse_modules(text: &str) -> Result<Vec<Module>, String> {
    let mut out: Vec<Module> = Vec::new();
    for (lineno, tokens) in lines(text)? {
        let path = tokens[0].clone();
        if ![".ko", ".ko.xz", ".ko.zst"]
            .iter()
            .any(|e| path.ends_with(e))
        {
            return Err(format!(
                "line {lineno}: '{path}' is not a .ko, .ko.xz or .ko.zst path"
            ));
        }
        let fields = fields(&tokens[1..], MODULE_KEYS, lineno)?;
        if fields.iter().filter(|(k, _)| k == "depends").count() > 1 {
            return Err(format!("line {lineno}: depends= given twice"));
        }
        let module = Module { path, fields };
        if out.iter().any(|m| m.name() == module.name()) {
            return Err(format!(
                "line {lineno}: module {} listed twice",
                module.name()
            ));
        }
        out.push(module);
    }
    Ok(out)
}

/// Parse `builtin.txt`.
pub fn parse_builtin(text: &str) -> Result<Vec<Builtin>, String> {
    let mut out = Vec::new();
    for (lineno, tokens) in lines(text)? {
        let fields = fields(&tokens[1..], &["alias"], lineno)?;
        out.push(Builtin {
            path: tokens[0].clone(),
            aliases: fields.into_iter().map(|(_, v)| v).collect(),
        });
    }
    Ok(out)
}

/// Non-comment lines as (line number, tokens), at least one token each.
fn lines(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let tokens = tokens(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        out.push((i + 1, tokens));
    }
    Ok(out)
}

/// `key=value` tokens, keys checked against `allowed`.
fn fields(
    tokens: &[String],
    allowed: &[&str],
    lineno: usize,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for t in tokens {
        let Some((k, v)) = t.split_once('=') else {
            return Err(format!("line {lineno}: '{t}' is not key=value"));
        };
        if !allowed.contains(&k) {
            return Err(format!("line {lineno}: unknown key '{k}'"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Split on blanks; a double-quoted stretch (`softdep="pre: crc64"`) keeps
/// its blanks and loses its quotes. No escapes.
fn tokens(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                cur.push(c);
                started = true;
            }
        }
    }
    if quoted {
        return Err("unbalanced quote".into());
    }
    if started {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_lines() {
        let m = parse_modules(
            "# comment\nkernel/lib/crc-t10dif.ko.xz softdep=\"pre: crct10dif\" depends=crct10dif_common alias=a alias=b\n",
        )
        .unwrap();
        assert_eq!(m[0].name(), "crc_t10dif");
        assert_eq!(m[0].uncompressed_path(), "kernel/lib/crc-t10dif.ko");
        assert_eq!(
            m[0].get_all("softdep").collect::<Vec<_>>(),
            ["pre: crct10dif"]
        );
        assert_eq!(m[0].get_all("alias").count(), 2);
        assert_eq!(m[0].depends(), ["crct10dif_common"]);
        assert!(parse_modules("kernel/a.ko bogus=1\n").is_err());
        assert!(parse_modules("kernel/a.o\n").is_err());
        assert!(parse_modules("kernel/a.ko softdep=\"pre: x\n").is_err());
        assert!(parse_modules("kernel/a.ko\nkernel/b/a.ko\n").is_err());
    }
}
