fn main() {
    std::process::exit(rdma_initrd::cli::main());
}
