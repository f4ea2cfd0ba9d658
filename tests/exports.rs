//! Exports, reports and the hledger journal, driven through the binary:
//! golden files for the demo's CSV files, the CSV rules (types, quoting,
//! formula injection, the Excel flavour), reversals, byte-identical
//! re-exports, verify-export against every kind of tampering, agreement
//! with `position` and `balances`, hledger's balances, and the report as
//! headless Chromium renders it.
//!
//! hledger and Chromium tests skip (with a note on stderr) when the tool is
//! not installed, unless FUNDLEDGER_REQUIRE_HLEDGER / FUNDLEDGER_REQUIRE_CHROMIUM
//! is set, as .ci/run does. Set UPDATE_GOLDEN=1 to rewrite tests/golden/.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use util::*;

mod util {
    //! Helpers for this test binary only (tests/util belongs to the
    //! ledger's own tests).
    #![allow(dead_code)]

    use std::ffi::OsStr;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Longest a headless browser or hledger run may take.
    pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

    pub fn bin() -> &'static str {
        env!("CARGO_BIN_EXE_fundledger")
    }

    /// Run the binary in `dir` with a clean FUNDLEDGER_* environment.
    pub fn run<I, S>(dir: &Path, args: I) -> (i32, String, String)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = Command::new(bin())
            .current_dir(dir)
            .env_remove("FUNDLEDGER_LEDGER")
            .env_remove("FUNDLEDGER_KEY")
            .stdin(Stdio::null())
            .args(args)
            .output()
            .expect("cannot run fundledger");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Run and require exit 0; returns stdout.
    #[track_caller]
    pub fn ok<I, S>(dir: &Path, args: I) -> String
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let shown: Vec<String> = args
            .clone()
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let (code, out, err) = run(dir, args);
        assert_eq!(code, 0, "fundledger {shown:?} exited {code}\n{out}\n{err}");
        out
    }

    /// A finished demo in a temporary directory.
    pub struct DemoDir {
        pub dir: tempfile::TempDir,
    }

    impl DemoDir {
        pub fn new() -> DemoDir {
            let dir = tempfile::tempdir().unwrap();
            ok(dir.path(), ["demo", "--out", "demo"]);
            DemoDir { dir }
        }
        pub fn root(&self) -> &Path {
            self.dir.path()
        }
        pub fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join("demo").join(rel)
        }
        pub fn ledger(&self) -> String {
            self.path("ledger.sqlite").display().to_string()
        }
    }

    /// Copy a flat directory.
    pub fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }

    /// A tool from PATH, or None after a note when it may be skipped.
    pub fn tool(name: &str, require_env: &str) -> Option<PathBuf> {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        });
        match found {
            Some(p) => Some(p),
            None if std::env::var_os(require_env).is_some() => {
                panic!("{name} is not installed but {require_env} is set: install it (apt-get install -y {name})")
            }
            None => {
                eprintln!("note: skipping this test: {name} is not installed (set {require_env}=1 to make that an error)");
                None
            }
        }
    }

    /// Run a tool with a deadline; returns (exit code, stdout, stderr).
    pub fn run_tool(program: &Path, args: &[String], cwd: &Path) -> (i32, Vec<u8>, String) {
        let out_path = cwd.join(format!(".tool-out-{}", std::process::id()));
        let err_path = cwd.join(format!(".tool-err-{}", std::process::id()));
        let mut child = Command::new(program)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > TOOL_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not finish within {TOOL_TIMEOUT:?}",
                    program.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = std::fs::read(&out_path).unwrap_or_default();
        let err =
            String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into_owned();
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        (status.code().unwrap_or(-1), out, err)
    }
}

/// Parse a CSV file (as written: LF, no BOM) into its header and rows.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut records = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect::<Vec<_>>());
    let header = records.next().expect("no header row");
    (header, records.collect())
}

/// Rows of a CSV as maps from column name to cell.
fn csv_maps(path: &Path) -> Vec<BTreeMap<String, String>> {
    let (header, rows) = read_csv(path);
    rows.into_iter()
        .map(|r| header.iter().cloned().zip(r).collect())
        .collect()
}

/// Replace every run of exactly 64 lower-case hex digits, and `extra`
/// strings, by placeholders: what differs between demos (keys are random).
fn normalise_text(text: &str, extra: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        let mut j = i;
        while j < chars.len() && hex(chars[j]) {
            j += 1;
        }
        let boundary_before = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        let boundary_after = j == chars.len() || !chars[j].is_ascii_alphanumeric();
        if j - i == 64 && boundary_before && boundary_after {
            out.push_str("<sha256>");
            i = j;
        } else if j > i {
            out.extend(&chars[i..j]);
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    for (from, to) in extra {
        out = out.replace(from, to);
    }
    out
}

/// The root hash (base64) named by a MANIFEST.
fn manifest_root(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("MANIFEST")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("root_hash "))
        .expect("no root_hash line")
        .to_string()
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/demo")
}

/// Compare `actual` with a golden file, or rewrite it with UPDATE_GOLDEN=1.
#[track_caller]
fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or(expected.lines().count().min(actual.lines().count()) + 1);
        panic!(
            "{name} differs from {} at line {line}:\n  golden: {:?}\n  actual: {:?}\n(run with UPDATE_GOLDEN=1 if the change is intended)",
            path.display(),
            expected.lines().nth(line - 1),
            actual.lines().nth(line - 1)
        );
    }
}

#[test]
fn golden_files_for_the_demo_exports() {
    let demo = DemoDir::new();
    let export = demo.path("export");
    let root = manifest_root(&export);
    for t in fundledger::export::TABLES {
        let text = std::fs::read_to_string(export.join(t.file)).unwrap();
        // Only hash columns differ between demos; they are normalised.
        let has_hashes = t
            .columns
            .iter()
            .any(|c| c.column_type == fundledger::export::ColumnType::Hash);
        let text = if has_hashes {
            normalise_text(&text, &[])
        } else {
            text
        };
        assert!(!text.contains(&root));
        check_golden(t.file, &text);
    }
    let journal = std::fs::read_to_string(demo.path("fund.journal")).unwrap();
    check_golden("fund.journal", &normalise_text(&journal, &[]));
    let report_md = std::fs::read_to_string(demo.path("report/report.md")).unwrap();
    check_golden(
        "report.md",
        &normalise_text(&report_md, &[(&root, "<root-base64>")]),
    );
}

#[test]
fn demo_exports_follow_the_csv_rules() {
    let demo = DemoDir::new();
    let export = demo.path("export");
    let amount = |s: &str| {
        let u = s.strip_prefix('-').unwrap_or(s);
        matches!(u.split_once('.'), Some((i, f)) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit())
            && (i == "0" || !i.starts_with('0')) && f.len() == 2 && f.bytes().all(|b| b.is_ascii_digit()))
            && s != "-0.00"
    };
    let date = |s: &str| fundledger::state::parse_date(s).is_ok();
    for t in fundledger::export::TABLES {
        let path = export.join(t.file);
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.starts_with(b"\xEF\xBB\xBF"),
            "{}: BOM without --excel",
            t.file
        );
        assert!(!bytes.contains(&b'\r'), "{}: CR without --excel", t.file);
        assert!(bytes.ends_with(b"\n"), "{}: no final line end", t.file);
        let (header, rows) = read_csv(&path);
        let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        assert_eq!(header, names, "{}: header", t.file);
        assert!(!rows.is_empty(), "{}: no rows in the demo", t.file);
        for row in &rows {
            for (cell, column) in row.iter().zip(t.columns) {
                use fundledger::export::ColumnType::*;
                let good = cell.is_empty()
                    || match column.column_type {
                        Amount => amount(cell),
                        Integer => {
                            cell.bytes().all(|b| b.is_ascii_digit())
                                && (cell == "0" || !cell.starts_with('0'))
                        }
                        Ratio => cell.split_once('.').is_some_and(|(_, f)| f.len() == 4),
                        Decimal => cell.parse::<rust_decimal::Decimal>().is_ok(),
                        Rate => cell.split_once('.').is_some_and(|(_, f)| f.len() == 6),
                        Date => date(cell),
                        Timestamp => cell.len() == 24 && cell.ends_with('Z'),
                        Boolean => cell == "true" || cell == "false",
                        Hash => {
                            cell.len() == 64
                                && cell
                                    .bytes()
                                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                        }
                        Code => cell
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
                        Identifier => cell.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                        }),
                        Enum | Text => true,
                    };
                assert!(
                    good,
                    "{}: {} = {cell:?} is not a {}",
                    t.file,
                    column.name,
                    column.column_type.name()
                );
            }
        }
    }
    // Amounts are never grouped and never in exponent form.
    let summary = csv_maps(&export.join("fund_summary.csv"));
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["committed"], "410000000.00");
    assert_eq!(
        summary[0]["tree_size"],
        std::fs::read_to_string(export.join("MANIFEST"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("tree_size "))
            .unwrap()
    );
}

#[test]
fn excel_flavour_adds_a_bom_and_crlf_and_nothing_else() {
    let demo = DemoDir::new();
    let root = demo.root();
    let key = demo.path("keys/auditor.key").display().to_string();
    ok(
        root,
        [
            "--ledger",
            &demo.ledger(),
            "--key",
            &key,
            "export",
            "csv",
            "--fund",
            "gaif-1",
            "--out",
            "excel",
            "--excel",
        ],
    );
    for t in fundledger::export::TABLES {
        let plain = std::fs::read(demo.path("export").join(t.file)).unwrap();
        let excel = std::fs::read(root.join("excel").join(t.file)).unwrap();
        let body = excel
            .strip_prefix(b"\xEF\xBB\xBF".as_slice())
            .expect("no BOM");
        assert!(
            !String::from_utf8_lossy(body)
                .replace("\r\n", "")
                .contains('\n'),
            "{}: a bare LF",
            t.file
        );
        assert_eq!(
            String::from_utf8_lossy(body)
                .replace("\r\n", "\n")
                .as_bytes(),
            plain.as_slice(),
            "{}",
            t.file
        );
    }
    let manifest = std::fs::read_to_string(root.join("excel/MANIFEST")).unwrap();
    assert!(manifest.contains("\nexcel true\n"));
    let (code, out, _) = run(root, ["--ledger", &demo.ledger(), "verify-export", "excel"]);
    assert_eq!(code, 0, "{out}");
}

/// A small ledger with hostile names, reversals and late payments.
struct Tricky {
    dir: tempfile::TempDir,
}

impl Tricky {
    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    fn run(&self, key: &str, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["--ledger".to_string(), self.path("ledger.sqlite")];
        if !key.is_empty() {
            all.extend(["--key".to_string(), self.path(&format!("keys/{key}.key"))]);
        }
        all.extend(args.iter().map(|s| s.to_string()));
        run(self.dir.path(), all)
    }

    #[track_caller]
    fn ok(&self, key: &str, args: &[&str]) -> String {
        let (code, out, err) = self.run(key, args);
        assert_eq!(code, 0, "{args:?} exited {code}\n{out}\n{err}");
        // Piped, a command that succeeds writes nothing to stderr: no
        // progress display (that is for terminals only).
        assert!(err.is_empty(), "{args:?} wrote to stderr: {err}");
        out
    }

    /// Record an event and return its seq.
    #[track_caller]
    fn seq(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok("recorder", &all);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["seq"].to_string()
    }

    fn new() -> Tricky {
        let t = Tricky {
            dir: tempfile::tempdir().unwrap(),
        };
        let root = t.dir.path();
        for name in ["admin", "recorder", "auditor", "outsider", "lp"] {
            ok(root, ["key", "generate", name, "--dir", "keys"]);
        }
        t.ok(
            "admin",
            &["init", "--origin", "ledger.example.org/export-test"],
        );
        t.ok(
            "admin",
            &["key", "enroll", "keys/recorder.pub", "--role", "recorder"],
        );
        t.ok(
            "admin",
            &["key", "enroll", "keys/auditor.pub", "--role", "auditor"],
        );
        let d = |date: &str| ["--date".to_string(), date.to_string()];
        let rec = |args: &[&str], date: &str| {
            let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            all.extend(d(date));
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            t.seq(&refs)
        };
        rec(
            &[
                "fund",
                "create",
                "--id",
                "f1",
                "--name",
                "Test Fund <I>",
                "--currency",
                "USD",
                "--jurisdiction",
                "AE",
                "--vintage",
                "2024",
                "--fee-rate",
                "0.02",
            ],
            "2024-01-01",
        );
        for (id, name, kind) in [
            (
                "p-eq",
                "=HYPERLINK(\"http://evil.example/\",\"click\")",
                "government",
            ),
            ("p-plus", "+1", "private"),
            ("p-minus", "-x", "sovereign_fund"),
            ("p-at", "@SUM(A1:A9)", "private"),
            ("p-html", "<script>alert(1)</script> & \"Co\"", "other"),
        ] {
            let name = format!("--name={name}");
            rec(
                &[
                    "partner",
                    "add",
                    "--id",
                    id,
                    &name,
                    "--type",
                    kind,
                    "--country",
                    "AE",
                ],
                "2024-01-01",
            );
        }
        // A tab (or CR) cannot even enter the ledger: free text has no control characters.
        let (code, _, err) = t.run(
            "recorder",
            &[
                "partner",
                "add",
                "--id",
                "p-tab",
                "--name=\tX",
                "--type",
                "private",
                "--country",
                "AE",
                "--date",
                "2024-01-01",
            ],
        );
        assert_eq!(code, 2, "a name with a tab was accepted: {err}");
        for id in ["p-eq", "p-plus", "p-minus", "p-at", "p-html"] {
            let memo = if id == "p-at" {
                "--memo==1+2"
            } else {
                "--memo=subscription"
            };
            rec(
                &[
                    "commit",
                    "--fund",
                    "f1",
                    "--partner",
                    id,
                    "--amount",
                    "1000.00 USD",
                    memo,
                ],
                "2024-01-10",
            );
        }
        rec(
            &[
                "commit",
                "--reduce",
                "--fund",
                "f1",
                "--partner",
                "p-plus",
                "--amount",
                "100.00 USD",
                "--memo=-side letter",
            ],
            "2024-01-15",
        );
        // Call 1: shares 100 each, 90 for p-plus.
        rec(
            &[
                "call",
                "--fund",
                "f1",
                "--amount",
                "490.00 USD",
                "--purpose",
                "investment",
                "--due-date",
                "2024-03-01",
            ],
            "2024-02-01",
        );
        let bounced = rec(
            &[
                "contribute",
                "--fund",
                "f1",
                "--partner",
                "p-eq",
                "--call",
                "1",
                "--amount",
                "100.00 USD",
            ],
            "2024-02-20",
        );
        rec(
            &[
                "contribute",
                "--fund",
                "f1",
                "--partner",
                "p-plus",
                "--call",
                "1",
                "--amount",
                "45.00 USD",
            ],
            "2024-02-25",
        );
        rec(
            &[
                "contribute",
                "--fund",
                "f1",
                "--partner",
                "p-minus",
                "--call",
                "1",
                "--amount",
                "100.00 USD",
            ],
            "2024-03-05",
        );
        rec(
            &[
                "contribute",
                "--fund",
                "f1",
                "--partner",
                "p-at",
                "--call",
                "1",
                "--amount",
                "100.00 USD",
            ],
            "2024-02-28",
        );
        rec(
            &[
                "contribute",
                "--fund",
                "f1",
                "--partner",
                "p-html",
                "--call",
                "1",
                "--amount",
                "100.00 USD",
            ],
            "2024-02-28",
        );
        rec(
            &["reverse", &bounced, "--reason==bounced payment"],
            "2024-03-10",
        );
        // Call 2, issued in error and reversed.
        let call2 = rec(
            &[
                "call",
                "--fund",
                "f1",
                "--amount",
                "980.00 USD",
                "--purpose",
                "management_fee",
                "--due-date",
                "2024-05-01",
            ],
            "2024-04-01",
        );
        rec(
            &["reverse", &call2, "--reason", "issued in error"],
            "2024-04-02",
        );
        rec(
            &[
                "startup",
                "add",
                "--id",
                "s1",
                "--name=@Startup",
                "--country",
                "AE",
                "--sector=+AI",
            ],
            "2024-04-01",
        );
        rec(
            &[
                "invest",
                "--fund",
                "f1",
                "--startup",
                "s1",
                "--amount",
                "300.00 USD",
            ],
            "2024-04-15",
        );
        rec(
            &[
                "call",
                "--fund",
                "f1",
                "--amount",
                "49.00 USD",
                "--purpose",
                "expense",
                "--due-date",
                "2024-07-01",
            ],
            "2024-06-01",
        );
        rec(
            &[
                "contribute",
                "--fund",
                "f1",
                "--partner",
                "p-at",
                "--call",
                "3",
                "--amount",
                "10.00 USD",
            ],
            "2024-06-20",
        );
        rec(
            &[
                "value",
                "--fund",
                "f1",
                "--startup",
                "s1",
                "--fair-value",
                "450.00 USD",
            ],
            "2024-06-30",
        );
        rec(
            &[
                "distribute",
                "--fund",
                "f1",
                "--amount",
                "40.00 USD",
                "--memo=-first",
            ],
            "2024-06-30",
        );
        let wrong = rec(
            &["distribute", "--fund", "f1", "--amount", "10.00 USD"],
            "2024-07-01",
        );
        rec(&["reverse", &wrong, "--reason=-wrong amount"], "2024-07-02");
        // Last: once a partner has a key, its entries need its signature too.
        t.ok(
            "admin",
            &[
                "key",
                "enroll",
                "keys/lp.pub",
                "--role",
                "partner",
                "--partner",
                "p-at",
            ],
        );
        t
    }

    fn export(&self, out: &str) -> PathBuf {
        self.ok("auditor", &["export", "csv", "--fund", "f1", "--out", out]);
        self.dir.path().join(out)
    }
}

#[test]
fn text_cells_are_neutralised_and_amounts_stay_numbers() {
    let t = Tricky::new();
    let dir = t.export("x");
    let partners = csv_maps(&dir.join("partners.csv"));
    let name =
        |id: &str| partners.iter().find(|p| p["partner"] == id).unwrap()["legal_name"].clone();
    assert_eq!(
        name("p-eq"),
        "'=HYPERLINK(\"http://evil.example/\",\"click\")"
    );
    assert_eq!(name("p-plus"), "'+1");
    assert_eq!(name("p-minus"), "'-x");
    assert_eq!(name("p-at"), "'@SUM(A1:A9)");
    assert_eq!(name("p-html"), "<script>alert(1)</script> & \"Co\"");
    let raw = std::fs::read_to_string(dir.join("partners.csv")).unwrap();
    assert!(
        raw.contains(
            "p-eq,\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"click\"\")\",government,"
        ),
        "{raw}"
    );
    assert!(raw.contains("p-plus,'+1,private,"), "{raw}");

    let commitments = csv_maps(&dir.join("commitments.csv"));
    let reduce = commitments
        .iter()
        .find(|r| r["kind"] == "commitment.reduce")
        .unwrap();
    assert_eq!(reduce["change"], "-100.00");
    assert_eq!(reduce["committed_after"], "900.00");
    assert_eq!(reduce["memo"], "'-side letter");
    let at = commitments.iter().find(|r| r["partner"] == "p-at").unwrap();
    assert_eq!(at["memo"], "'=1+2");
    let raw = std::fs::read_to_string(dir.join("commitments.csv")).unwrap();
    assert!(
        raw.contains(",p-plus,-100.00,900.00,USD,"),
        "a negative amount was altered: {raw}"
    );

    let contributions = csv_maps(&dir.join("contributions.csv"));
    let reversal = contributions
        .iter()
        .find(|r| r["kind"] == "reversal")
        .unwrap();
    assert_eq!(reversal["amount"], "-100.00");
    assert_eq!(reversal["memo"], "'=bounced payment");
    let distributions = csv_maps(&dir.join("distributions.csv"));
    assert!(distributions.iter().any(|r| r["kind"] == "reversal"
        && r["amount"].starts_with("-2.")
        && r["memo"] == "'-wrong amount"));
    assert!(distributions.iter().any(|r| r["memo"] == "'-first"));
    let holdings = csv_maps(&dir.join("holdings.csv"));
    assert_eq!(holdings[0]["name"], "'@Startup");
    assert_eq!(holdings[0]["sector"], "'+AI");
    // Every numeric cell of every file parses as a number.
    for t in fundledger::export::TABLES {
        let (_, rows) = read_csv(&dir.join(t.file));
        for row in rows {
            for (cell, c) in row.iter().zip(t.columns) {
                if c.column_type.is_numeric() && !cell.is_empty() {
                    assert!(
                        cell.parse::<f64>().is_ok(),
                        "{}: {} = {cell:?}",
                        t.file,
                        c.name
                    );
                }
            }
        }
    }
}

#[test]
fn reversed_calls_and_contributions_never_show_as_paid() {
    let t = Tricky::new();
    let dir = t.export("x");
    let calls = csv_maps(&dir.join("capital_calls.csv"));
    let row = |n: &str, p: &str| {
        calls
            .iter()
            .find(|r| r["call_number"] == n && r["partner"] == p)
            .unwrap()
            .clone()
    };
    let eq = row("1", "p-eq");
    assert_eq!(
        (
            eq["paid"].as_str(),
            eq["outstanding"].as_str(),
            eq["status"].as_str()
        ),
        ("0.00", "100.00", "unpaid")
    );
    assert_eq!(
        eq["last_payment_date"], "",
        "a reversed contribution is not a payment"
    );
    assert_eq!(eq["overdue"], "true");
    let plus = row("1", "p-plus");
    assert_eq!(
        (
            plus["amount_called"].as_str(),
            plus["paid"].as_str(),
            plus["status"].as_str()
        ),
        ("90.00", "45.00", "partially_paid")
    );
    assert_eq!(plus["commitment_at_call"], "900.00");
    assert_eq!(plus["unfunded_after_call"], "810.00");
    let minus = row("1", "p-minus");
    assert_eq!(
        (
            minus["status"].as_str(),
            minus["days_past_due"].as_str(),
            minus["overdue"].as_str()
        ),
        ("paid", "4", "false")
    );
    for p in ["p-eq", "p-plus", "p-minus", "p-at", "p-html"] {
        let r = row("2", p);
        assert_eq!(r["status"], "reversed", "{p}");
        assert_eq!(r["paid"], "0.00");
        assert_eq!(r["outstanding"], "0.00");
        assert!(!r["reversed_by_seq"].is_empty());
        assert_eq!(r["overdue"], "false");
    }
    // Call 3 was booked after call 2's reversal: cumulative excludes call 2.
    let at3 = row("3", "p-at");
    assert_eq!(
        (at3["cumulative_called"].as_str(), at3["status"].as_str()),
        ("110.00", "paid")
    );

    // The capital accounts agree with `position`, partner by partner.
    let position: Value =
        serde_json::from_str(&t.ok("", &["position", "--fund", "f1", "--json"])).unwrap();
    let accounts = csv_maps(&dir.join("capital_accounts.csv"));
    for p in position["partners"].as_array().unwrap() {
        let id = p["partner"].as_str().unwrap();
        let a = accounts.iter().find(|a| a["partner"] == id).unwrap();
        for (csv_col, json_key) in [
            ("commitment", "committed"),
            ("called", "called"),
            ("paid_in", "paid_in"),
            ("unfunded", "unfunded"),
            ("outstanding", "outstanding"),
            ("distributed_to_date", "distributed"),
            ("closing_balance", "nav"),
            ("nav_share", "nav_share"),
            ("dpi", "dpi"),
            ("rvpi", "rvpi"),
            ("tvpi", "tvpi"),
            ("irr", "irr"),
        ] {
            assert_eq!(
                a[csv_col],
                p[json_key].as_str().unwrap_or(""),
                "{id}: {csv_col}"
            );
        }
    }
    let eq_account = accounts.iter().find(|a| a["partner"] == "p-eq").unwrap();
    assert_eq!(eq_account["paid_in"], "0.00");
    assert_eq!(eq_account["contributions"], "0.00");
}

#[test]
fn demo_exports_agree_with_position_and_balances() {
    let demo = DemoDir::new();
    let ledger = demo.ledger();
    let position: Value = serde_json::from_str(&ok(
        demo.root(),
        [
            "--ledger", &ledger, "position", "--fund", "gaif-1", "--json",
        ],
    ))
    .unwrap();
    let summary = &csv_maps(&demo.path("export/fund_summary.csv"))[0];
    let totals = &position["fund_totals"];
    for key in [
        "committed",
        "called",
        "paid_in",
        "unfunded",
        "outstanding",
        "distributed",
        "nav",
        "dpi",
        "rvpi",
        "tvpi",
        "irr",
    ] {
        assert_eq!(summary[key], totals[key].as_str().unwrap(), "{key}");
    }
    assert_eq!(
        summary["nav_from_assets"],
        position["nav_from_assets"].as_str().unwrap()
    );
    for g in position["by_group"].as_array().unwrap() {
        let group = g["group"].as_str().unwrap();
        for key in [
            "committed",
            "paid_in",
            "distributed",
            "committed_share",
            "paid_in_share",
            "distributed_share",
        ] {
            assert_eq!(
                summary[&format!("{group}_{key}")],
                g[key].as_str().unwrap_or(""),
                "{group}_{key}"
            );
        }
    }
    // The journal's postings sum to the trial balance, account by account.
    let balances: Value = serde_json::from_str(&ok(
        demo.root(),
        [
            "--ledger", &ledger, "balances", "--fund", "gaif-1", "--json",
        ],
    ))
    .unwrap();
    let mut sums: BTreeMap<String, rust_decimal::Decimal> = BTreeMap::new();
    for r in csv_maps(&demo.path("export/journal.csv")) {
        let dim = if !r["partner"].is_empty() {
            &r["partner"]
        } else {
            &r["startup"]
        };
        let key = if dim.is_empty() {
            r["account"].clone()
        } else {
            format!("{}:{dim}", r["account"])
        };
        let debit: rust_decimal::Decimal = if r["debit"].is_empty() {
            Default::default()
        } else {
            r["debit"].parse().unwrap()
        };
        let credit: rust_decimal::Decimal = if r["credit"].is_empty() {
            Default::default()
        } else {
            r["credit"].parse().unwrap()
        };
        *sums.entry(key).or_default() += debit - credit;
    }
    sums.retain(|_, v| !v.is_zero());
    let expected = fundledger_balances(&balances);
    let actual: BTreeMap<String, String> = sums
        .iter()
        .map(|(k, v)| (k.clone(), format!("{v:.2}")))
        .collect();
    assert_eq!(actual, expected);
    // Holdings agree with the trial balance too.
    for h in csv_maps(&demo.path("export/holdings.csv")) {
        let cost = expected
            .get(&format!("investments:{}", h["startup"]))
            .cloned()
            .unwrap_or("0.00".into());
        assert_eq!(h["cost"], cost, "{}", h["startup"]);
    }
}

/// `balances --json` lines as account[:dimension] -> balance.
fn fundledger_balances(balances: &Value) -> BTreeMap<String, String> {
    balances["funds"][0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let dim = l["partner"].as_str().or(l["startup"].as_str());
            let account = l["account"].as_str().unwrap();
            let key = match dim {
                Some(d) => format!("{account}:{d}"),
                None => account.to_string(),
            };
            (key, l["balance"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn reexport_is_byte_identical_and_verifies_after_the_ledger_grows() {
    let demo = DemoDir::new();
    let root = demo.root();
    let ledger = demo.ledger();
    let key = demo.path("keys/auditor.key").display().to_string();
    let export = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "--ledger", &ledger, "--key", &key, "export", "csv", "--fund", "gaif-1", "--out", out,
        ];
        args.extend_from_slice(extra);
        ok(root, args);
        root.join(out)
    };
    let again = export("again", &[]);
    let files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        files(&demo.path("export")),
        files(&again),
        "a re-export differs (MANIFEST included)"
    );
    // The report too is a pure function of the ledger state.
    ok(
        root,
        [
            "--ledger",
            &ledger,
            "--key",
            &key,
            "report",
            "--fund",
            "gaif-1",
            "--out",
            "report-again",
        ],
    );
    assert_eq!(
        files(&demo.path("report")),
        files(&root.join("report-again"))
    );
    let as_of_a = export(
        "as-of-a",
        &["--as-of", "2024-12-31", "--from", "2024-01-01"],
    );
    let as_of_b = export(
        "as-of-b",
        &["--as-of", "2024-12-31", "--from", "2024-01-01"],
    );
    assert_eq!(files(&as_of_a), files(&as_of_b));
    let accounts = csv_maps(&as_of_a.join("capital_accounts.csv"));
    assert!(accounts
        .iter()
        .all(|a| a["period_start"] == "2024-01-01" && a["period_end"] == "2024-12-31"));
    assert!(accounts.iter().all(|a| a["opening_balance"] != "0.00"));
    let position: Value = serde_json::from_str(&ok(
        root,
        [
            "--ledger",
            &ledger,
            "position",
            "--fund",
            "gaif-1",
            "--as-of",
            "2024-12-31",
            "--json",
        ],
    ))
    .unwrap();
    let mof = accounts.iter().find(|a| a["partner"] == "mof").unwrap();
    let mof_position = position["partners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partner"] == "mof")
        .unwrap();
    assert_eq!(
        mof["closing_balance"],
        mof_position["nav"].as_str().unwrap()
    );

    // The ledger grows; the old exports still verify (recomputed at their
    // tree size), and a new export describes the new state.
    // Keep a copy of the ledger as it is now (with its write-ahead log).
    let old_ledger = root.join("old.sqlite");
    std::fs::copy(&ledger, &old_ledger).unwrap();
    let wal = PathBuf::from(format!("{ledger}-wal"));
    if wal.exists() {
        std::fs::copy(&wal, root.join("old.sqlite-wal")).unwrap();
    }
    let recorder = demo.path("keys/recorder.key").display().to_string();
    ok(
        root,
        [
            "--ledger",
            &ledger,
            "--key",
            &recorder,
            "fee",
            "--fund",
            "gaif-1",
            "--amount",
            "100000.00 USD",
            "--date",
            "2026-10-15",
        ],
    );
    for dir in ["demo/export", "again", "as-of-a", "demo/report"] {
        let (code, out, err) = run(root, ["--ledger", &ledger, "verify-export", dir]);
        assert_eq!(code, 0, "{dir}: {out}{err}");
        assert!(out.contains("byte-identical"), "{out}");
    }
    let grown = export("grown", &[]);
    assert_ne!(manifest_root(&grown), manifest_root(&again));
    // Checked against the ledger as it was before: the export names a
    // state that ledger does not have (a rolled-back ledger looks the same).
    let (code, out, _) = run(root, ["verify-export", "grown", "--ledger", "old.sqlite"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("but the ledger has only"), "{out}");
    let (code, out, _) = run(root, ["verify-export", "again", "--ledger", "old.sqlite"]);
    assert_eq!(code, 0, "{out}");
    // The same two outcomes as JSON (schema/EXPORTS.md section 6).
    let (code, out, _) = run(
        root,
        ["verify-export", "again", "--ledger", "old.sqlite", "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["status"], "good", "{v}");
    assert_eq!(v["manifest"]["kind"], "csv");
    assert_eq!(v["manifest"]["fund"], "gaif-1");
    let manifest = std::fs::read_to_string(again.join("MANIFEST")).unwrap();
    let tree_size: u64 = manifest
        .lines()
        .find_map(|l| l.strip_prefix("tree_size "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(v["manifest"]["tree_size"], tree_size);
    use base64::Engine;
    let root_hash = base64::engine::general_purpose::STANDARD
        .decode(manifest_root(&again))
        .unwrap();
    assert_eq!(v["manifest"]["root_hash"], hex::encode(root_hash));
    assert!(v["findings"].as_array().unwrap().is_empty());
    assert!(!v["passed"].as_array().unwrap().is_empty());
    let (code, out, _) = run(
        root,
        ["verify-export", "grown", "--ledger", "old.sqlite", "--json"],
    );
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "bad", "{v}");
    assert_eq!(v["findings"][0]["file"], "MANIFEST", "{v}");
    assert!(v["findings"][0]["problem"]
        .as_str()
        .unwrap()
        .contains("but the ledger has only"));
    // --as-of before the new entry: same files, different ledger state.
    let before = export("before", &["--as-of", "2024-12-31", "--from", "2024-01-01"]);
    let mut a = files(&as_of_a);
    let mut b = files(&before);
    a.remove("MANIFEST");
    b.remove("MANIFEST");
    a.remove("fund_summary.csv");
    b.remove("fund_summary.csv");
    assert_eq!(a, b);
}

#[test]
fn verify_export_detects_every_kind_of_tampering() {
    let demo = DemoDir::new();
    let root = demo.root();
    let ledger = demo.ledger();
    let good = demo.path("export");
    let auditor_pub = demo.path("keys/auditor.pub").display().to_string();
    let recorder_pub = demo.path("keys/recorder.pub").display().to_string();
    let verify = |dir: &Path, anchors: &[&str]| -> (i32, String) {
        let mut args: Vec<String> = Vec::new();
        if anchors.contains(&"ledger") {
            args.extend(["--ledger".to_string(), ledger.clone()]);
        }
        args.extend(["verify-export".to_string(), dir.display().to_string()]);
        for a in anchors {
            match *a {
                "ledger" => {}
                "trusted" => args.extend(["--trusted-key".to_string(), auditor_pub.clone()]),
                "wrong-key" => args.extend(["--trusted-key".to_string(), recorder_pub.clone()]),
                other => panic!("{other}"),
            }
        }
        let (code, out, err) = run(root, &args);
        (code, format!("{out}{err}"))
    };
    assert_eq!(verify(&good, &["ledger"]).0, 0);
    assert_eq!(verify(&good, &["trusted"]).0, 0);
    assert_eq!(verify(&good, &["ledger", "trusted"]).0, 0);
    let (code, out) = verify(&good, &[]);
    assert_eq!(code, 2, "no trust anchor must be exit 2: {out}");
    let (code, out) = verify(&good, &["wrong-key"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("MISMATCH  MANIFEST"), "{out}");
    let (code, out) = verify(&root.join("no-such-dir"), &["ledger"]);
    assert_eq!(code, 2, "{out}");

    let tampered = |name: &str, change: &dyn Fn(&Path)| -> PathBuf {
        let dir = root.join(name);
        copy_dir(&good, &dir);
        change(&dir);
        dir
    };
    // A changed byte.
    let dir = tampered("byte", &|d| {
        let p = d.join("capital_calls.csv");
        let mut bytes = std::fs::read(&p).unwrap();
        let i = bytes.len() / 2;
        bytes[i] ^= 0x01;
        std::fs::write(&p, bytes).unwrap();
    });
    for anchors in [&["ledger"][..], &["trusted"][..]] {
        let (code, out) = verify(&dir, anchors);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("MISMATCH  capital_calls.csv: SHA-256 is"),
            "{out}"
        );
    }
    // A missing file.
    let dir = tampered("missing", &|d| {
        std::fs::remove_file(d.join("holdings.csv")).unwrap()
    });
    let (code, out) = verify(&dir, &["ledger"]);
    assert_eq!(code, 1);
    assert!(out.contains("MISMATCH  holdings.csv: is missing"), "{out}");
    // An added file.
    let dir = tampered("added", &|d| {
        std::fs::write(d.join("notes.csv"), "a,b\n").unwrap()
    });
    let (code, out) = verify(&dir, &["trusted"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("MISMATCH  notes.csv: is not listed in the MANIFEST"),
        "{out}"
    );
    // A changed MANIFEST: its signature no longer verifies.
    let dir = tampered("manifest", &|d| {
        let p = d.join("MANIFEST");
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("as_of latest", "as_of 2026-09-30");
        std::fs::write(&p, text).unwrap();
    });
    let (code, out) = verify(&dir, &["ledger"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("MISMATCH  MANIFEST: signature does not verify"),
        "{out}"
    );
    // A deleted MANIFEST.
    let dir = tampered("no-manifest", &|d| {
        std::fs::remove_file(d.join("MANIFEST")).unwrap()
    });
    let (code, out) = verify(&dir, &["ledger"]);
    assert_eq!(code, 1);
    assert!(out.contains("MISMATCH  MANIFEST: missing"), "{out}");
    // A MANIFEST that is not a signed note.
    let dir = tampered("garbage", &|d| {
        std::fs::write(d.join("MANIFEST"), "hello\n").unwrap()
    });
    assert_eq!(verify(&dir, &["trusted"]).0, 1);

    // The signer forges consistently: edits a file and re-signs a MANIFEST
    // with the right sizes and hashes. The signature and hashes check out;
    // only the recomputation from the ledger catches it.
    let at = std::cell::Cell::new(0usize);
    let line = std::cell::Cell::new(0usize);
    let dir = tampered("forged", &|d| {
        let p = d.join("distributions.csv");
        let original = std::fs::read_to_string(&p).unwrap();
        at.set(original.find("70000000.00").unwrap());
        line.set(original[..at.get()].matches('\n').count() + 1);
        let text = original.replacen("70000000.00", "60000000.00", 1);
        std::fs::write(&p, &text).unwrap();
        let note = std::fs::read_to_string(d.join("MANIFEST")).unwrap();
        let (body, _) = fundledger::note::parse_note(&note).unwrap();
        let mut manifest = fundledger::export::Manifest::parse(&body).unwrap();
        let f = manifest
            .files
            .iter_mut()
            .find(|f| f.name == "distributions.csv")
            .unwrap();
        f.size = text.len() as u64;
        f.sha256 = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()).into();
        let key =
            fundledger::keys::load_signing_key(&d.parent().unwrap().join("demo/keys/auditor.key"))
                .unwrap();
        let signed =
            fundledger::note::sign_note(&manifest.to_body(), &manifest.origin, &key).unwrap();
        std::fs::write(d.join("MANIFEST"), signed).unwrap();
    });
    let (code, out) = verify(&dir, &["trusted"]);
    assert_eq!(code, 0, "hashes and signature are consistent: {out}");
    let (code, out) = verify(&dir, &["ledger"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("MISMATCH  distributions.csv: differs from the export recomputed from the ledger at tree size"), "{out}");
    let (at, line) = (at.get(), line.get());
    assert!(
        out.contains(&format!("first at byte {at} (line {line})")),
        "{out}"
    );

    // A different ledger: its origin and keys are not the export's.
    let other = tempfile::tempdir().unwrap();
    ok(other.path(), ["demo", "--out", "demo"]);
    let other_ledger = other
        .path()
        .join("demo/ledger.sqlite")
        .display()
        .to_string();
    let (code, out, _) = run(
        root,
        [
            "--ledger",
            &other_ledger,
            "verify-export",
            &good.display().to_string(),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not enrolled in the ledger"), "{out}");

    // A report directory: the same checks.
    let dir = tampered("report-byte", &|d| {
        for entry in std::fs::read_dir(d).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        copy_dir(&demo.path("report"), d);
        let p = d.join("report.md");
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replacen("intact", "intakt", 1);
        std::fs::write(&p, text).unwrap();
    });
    let (code, out) = verify(&dir, &["ledger"]);
    assert_eq!(code, 1);
    assert!(out.contains("MISMATCH  report.md"), "{out}");
    assert_eq!(verify(&demo.path("report"), &["ledger"]).0, 0);
}

#[test]
fn exports_need_an_enrolled_signer_and_an_empty_directory() {
    let t = Tricky::new();
    for (key, why) in [("outsider", "not enrolled"), ("lp", "may not sign exports")] {
        let (code, out, err) = t.run(key, &["export", "csv", "--fund", "f1", "--out", key]);
        assert_eq!(code, 2, "{key}: {out}{err}");
        assert!(err.contains(why), "{err}");
        assert!(
            !t.dir.path().join(key).exists(),
            "a refused export wrote files"
        );
    }
    let (code, _, err) = t.run("", &["export", "csv", "--fund", "f1", "--out", "nokey"]);
    assert_eq!(code, 2, "{err}");
    std::fs::create_dir(t.dir.path().join("busy")).unwrap();
    std::fs::write(t.dir.path().join("busy/other.txt"), "x").unwrap();
    let (code, _, err) = t.run(
        "auditor",
        &["export", "csv", "--fund", "f1", "--out", "busy"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("not empty"), "{err}");
    let (code, _, err) = t.run(
        "auditor",
        &["export", "csv", "--fund", "nope", "--out", "nope"],
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = t.run(
        "auditor",
        &[
            "export",
            "csv",
            "--fund",
            "f1",
            "--out",
            "x",
            "--as-of",
            "2024-13-01",
        ],
    );
    assert_eq!(code, 2, "{err}");
    // An empty directory is fine, and a partial directory is never left behind.
    std::fs::create_dir(t.dir.path().join("empty")).unwrap();
    t.export("empty");
    let leftovers: Vec<_> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn report_escapes_ledger_text() {
    let t = Tricky::new();
    t.ok("", &["report", "--fund", "f1", "--out", "r"]);
    let html = std::fs::read_to_string(t.path("r/report.html")).unwrap();
    assert!(!html.contains("<script>"), "raw ledger text in the HTML");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"));
    assert!(html.contains("Test Fund &lt;I&gt;"));
    for external in [
        "http:", "https:", "src=", "href=", "url(", "@import", "<link", "<script",
    ] {
        let hits = html.matches(external).count();
        let from_ledger = html.matches(&format!("{external}//evil.example")).count();
        assert_eq!(
            hits, from_ledger,
            "report.html refers to an external resource: {external}"
        );
    }
    let md = std::fs::read_to_string(t.path("r/report.md")).unwrap();
    assert!(
        md.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; \"Co\""),
        "{md}"
    );
    assert!(!md.contains("<script>"));
    // Without --key no MANIFEST is written.
    assert!(!t.dir.path().join("r/MANIFEST").exists());
}

#[test]
fn hledger_balances_equal_fundledger_balances() {
    let Some(hledger) = tool("hledger", "FUNDLEDGER_REQUIRE_HLEDGER") else {
        return;
    };
    let demo = DemoDir::new();
    let root = demo.root();
    let ledger = demo.ledger();
    let t = Tricky::new();
    let cases: Vec<(PathBuf, String, String, Option<&str>)> = vec![
        (
            demo.path("fund.journal"),
            ledger.clone(),
            "gaif-1".into(),
            None,
        ),
        (
            root.join("2024.journal"),
            ledger.clone(),
            "gaif-1".into(),
            Some("2024-06-30"),
        ),
        (
            t.dir.path().join("tricky.journal"),
            t.path("ledger.sqlite"),
            "f1".into(),
            None,
        ),
    ];
    for (journal, ledger, fund, as_of) in cases {
        if !journal.exists() {
            let mut args = vec![
                "--ledger".to_string(),
                ledger.clone(),
                "export".into(),
                "hledger".into(),
                "--fund".into(),
                fund.clone(),
                "--out".into(),
                journal.display().to_string(),
            ];
            if let Some(d) = as_of {
                args.extend(["--as-of".to_string(), d.to_string()]);
            }
            ok(root, args);
        }
        let f = journal.display().to_string();
        let (code, out, err) = run_tool(
            &hledger,
            &["-f".into(), f.clone(), "check".into(), "-s".into()],
            root,
        );
        assert_eq!(
            code,
            0,
            "hledger check -s failed on {f}: {}{err}",
            String::from_utf8_lossy(&out)
        );
        let (code, out, err) = run_tool(
            &hledger,
            &[
                "-f".into(),
                f.clone(),
                "bal".into(),
                "--flat".into(),
                "-N".into(),
                "-O".into(),
                "csv".into(),
            ],
            root,
        );
        assert_eq!(code, 0, "hledger bal failed: {err}");
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let mut from_hledger: BTreeMap<String, String> = BTreeMap::new();
        for record in reader.records() {
            let record = record.unwrap();
            let amount = record[1]
                .strip_suffix(" USD")
                .unwrap_or_else(|| panic!("{:?}", &record[1]));
            from_hledger.insert(record[0].to_string(), amount.to_string());
        }
        let mut args = vec![
            "--ledger".to_string(),
            ledger,
            "balances".into(),
            "--fund".into(),
            fund,
            "--json".into(),
        ];
        if let Some(d) = as_of {
            args.extend(["--as-of".to_string(), d.to_string()]);
        }
        let balances: Value = serde_json::from_str(&ok(root, args)).unwrap();
        let expected = fundledger_balances(&balances);
        assert!(!expected.is_empty());
        assert_eq!(from_hledger, expected, "{f}");
    }
    // One transaction per entry, with the seq and the hash.
    let text = std::fs::read_to_string(demo.path("fund.journal")).unwrap();
    let log = ok(root, ["--ledger", &demo.ledger(), "log", "--json"]);
    for line in log.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let is_fund_entry =
            e["fund"] == "gaif-1" && e["kind"] != "fund.create" || e["kind"] == "reversal";
        if is_fund_entry {
            let tag = format!(
                "; seq:{}, entry_hash:{}",
                e["seq"],
                e["entry_hash"].as_str().unwrap()
            );
            assert!(text.contains(&tag), "no transaction for entry {}", e["seq"]);
        }
    }
}

/// Pixels of `png` within a small distance of an RGB colour, and their
/// bounding box (x0, y0, x1, y1).
fn pixels_near(
    rgb: &[u8],
    width: usize,
    color: (u8, u8, u8),
) -> (usize, (usize, usize, usize, usize)) {
    let mut count = 0;
    let mut bbox = (usize::MAX, usize::MAX, 0, 0);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        let near = |a: u8, b: u8| (a as i32 - b as i32).abs() <= 10;
        if near(px[0], color.0) && near(px[1], color.1) && near(px[2], color.2) {
            count += 1;
            let (x, y) = (i % width, i / width);
            bbox = (bbox.0.min(x), bbox.1.min(y), bbox.2.max(x), bbox.3.max(y));
        }
    }
    (count, bbox)
}

fn hex_color(text: &str) -> (u8, u8, u8) {
    let v = |i: usize| u8::from_str_radix(&text[i..i + 2], 16).unwrap();
    (v(1), v(3), v(5))
}

#[test]
fn report_renders_in_headless_chromium() {
    let Some(chromium) = tool("chromium", "FUNDLEDGER_REQUIRE_CHROMIUM") else {
        return;
    };
    let demo = DemoDir::new();
    let root = demo.root();
    let html = demo.path("report/report.html");
    let url = format!("file://{}", html.display());
    let common = |profile: &str| -> Vec<String> {
        [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", root.join(profile).display())])
        .collect()
    };
    // The DOM as the browser parsed it.
    let mut args = common("profile-dom");
    args.extend(["--dump-dom".to_string(), url.clone()]);
    let (code, dom, err) = run_tool(&chromium, &args, root);
    assert_eq!(code, 0, "chromium --dump-dom failed: {err}");
    let dom = String::from_utf8_lossy(&dom);
    for text in [
        "Gulf AI Innovation Fund I",
        "1. Fund overview",
        "2. Capital and NAV over time",
        "3. Public and private money",
        "4. Partners",
        "5. Portfolio",
        "6. Flows by quarter",
        "7. Fees and expenses",
        "8. Performance",
        "9. Verification and ledger state",
        "Ministry of Finance",
        "Silicon Sand Semiconductors",
        "Intact: entries 0 to",
        "410\u{202F}000\u{202F}000.00",
    ] {
        assert!(dom.contains(text), "the rendered DOM lacks {text:?}");
    }
    assert_eq!(dom.matches("<svg").count(), 3, "three inline SVG charts");
    assert!(dom.contains("data-series=\"NAV\""));

    // A screenshot: the expected size, not blank, and each chart's series drawn.
    let png_path = root.join("report.png");
    let mut args = common("profile-shot");
    args.extend([
        format!("--screenshot={}", png_path.display()),
        "--window-size=1200,2000".to_string(),
        url,
    ]);
    let (code, _, err) = run_tool(&chromium, &args, root);
    assert_eq!(code, 0, "chromium --screenshot failed: {err}");
    let decoder = png::Decoder::new(std::fs::File::open(&png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    assert_eq!((info.width, info.height), (1200, 2000), "screenshot size");
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let rgb: Vec<u8> = buffer[..info.buffer_size()]
        .chunks_exact(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let width = info.width as usize;
    let non_white = rgb
        .chunks_exact(3)
        .filter(|p| p.iter().any(|&c| c < 235))
        .count();
    assert!(
        non_white > rgb.len() / 3 / 50,
        "the screenshot is nearly blank ({non_white} non-white pixels)"
    );
    use fundledger::report::{
        COLOR_CALLED, COLOR_COMMITTED, COLOR_DISTRIBUTED, COLOR_NAV, COLOR_PAID_IN,
    };
    // Paid-in is drawn over called, which shows only where they differ.
    for (name, color, least) in [
        ("committed", COLOR_COMMITTED, 600),
        ("called", COLOR_CALLED, 100),
        ("paid-in", COLOR_PAID_IN, 600),
        ("distributed", COLOR_DISTRIBUTED, 600),
        ("NAV", COLOR_NAV, 600),
    ] {
        let (count, (x0, y0, x1, y1)) = pixels_near(&rgb, width, hex_color(color));
        assert!(count >= least, "the {name} series drew only {count} pixels");
        assert!(
            x1 - x0 >= 600,
            "the {name} series spans only {} pixels across",
            x1 - x0
        );
        assert!(y1 >= y0, "{name}");
    }
    // The NAV chart is a chart: its line moves up and down over a tall region.
    let (_, (_, y0, _, y1)) = pixels_near(&rgb, width, hex_color(COLOR_NAV));
    assert!(
        y1 - y0 >= 100,
        "the NAV line spans only {} pixels up and down",
        y1 - y0
    );
}

#[test]
fn schema_document_lists_every_column() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/EXPORTS.md"))
            .unwrap();
    let generated = fundledger::export::schema_markdown();
    assert!(
        doc.contains(&generated),
        "schema/EXPORTS.md is out of step with src/export.rs; paste fundledger::export::schema_markdown() into it:\n{generated}"
    );
    assert!(doc.contains(fundledger::export::MANIFEST_HEADER));
}
