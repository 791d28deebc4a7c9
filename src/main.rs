//! The `cairn` command: parses arguments, runs the library, prints results.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
