#[bindery::processor(input = "orders")]
struct Order {
    id: u64,
}

fn main() {}
