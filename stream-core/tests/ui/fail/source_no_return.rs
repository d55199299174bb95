#[bindery::source(output = "ticks")]
async fn tick() {}

fn main() {}
