//! The `fundledger` binary: parse the command line (`cli`), run the command
//! (`commands`: one function per command, each calling the library and
//! printing its result), and map errors to exit codes (0 ok, 1 verification
//! found a problem, 2 could not run). All logic lives in the library.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use cli::Cli;

/// mimalloc instead of the system allocator: verify, import and export
/// allocate and free a few small objects per entry, which took glibc's
/// malloc about a sixth of verify's CPU (BENCHMARKS.md, "What bounds each
/// figure"). .cargo/config.toml sets how it commits memory.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // Help and version go to stdout with exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Usage errors: one line, like every other error, and exit 2.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid command line");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("fundledger: error: {first} (hint: see `fundledger --help`)");
            return ExitCode::from(2);
        }
    };
    match commands::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("fundledger: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
