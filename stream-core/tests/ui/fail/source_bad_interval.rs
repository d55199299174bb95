#[bindery::source(output = "ticks", interval = "soon")]
async fn tick() -> u64 {
    1
}

fn main() {}
