#[bindery::source(output = "ticks")]
async fn tick(seed: u64) -> u64 {
    seed
}

fn main() {}
