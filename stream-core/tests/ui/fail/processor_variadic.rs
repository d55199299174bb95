#[bindery::processor]
unsafe extern "C" fn double(value: u64, _: ...) -> u64 {
    value * 2
}

fn main() {}
