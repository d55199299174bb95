use bindery::prelude::*;

#[bindery::processor]
async fn echo<T>(value: Message<T>) -> Message<T> {
    value
}

fn main() {}
