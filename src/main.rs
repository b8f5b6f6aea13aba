// mimalloc rather than glibc's malloc: the daemon builds an evaluation's
// findings on pool threads and frees them on others, and glibc's per-thread
// arenas kept those frees as fragments: with 500 rules over 2,000 series
// the daemon grew ~80 MB every cycle (flat with MALLOC_ARENA_MAX=1, and
// flat with mimalloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rulewatch::cli::run()
}
