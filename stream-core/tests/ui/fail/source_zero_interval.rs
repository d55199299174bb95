#[bindery::source(output = "ticks", interval = "0s")]
async fn tick() -> u64 {
    1
}

fn main() {}
