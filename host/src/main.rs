//! The `cdc` binary: parses arguments and runs the command (see `cdc --help`).

// Decoding allocates many small values per event; mimalloc measured ~10 % more throughput than
// the system allocator in the `kafka_pipeline` benchmark (cdc-tests).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cdc_host::allocator::tune();
    cdc_host::cli::main()
}
