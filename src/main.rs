//! The `cairn` command: parses arguments, runs the library, prints results.

mod cli;

fn main() {
    let code = {
        // Fault injection for the test build; nothing in other builds.
        let _faults = cairn::fault::setup();
        cli::main()
    };
    std::process::exit(code);
}
