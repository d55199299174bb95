use bindery::prelude::*;

#[bindery::sink]
async fn audit(first: Context, order: String, second: Context) {
    let _ = (first, order, second);
}

fn main() {}
