#[bindery::sink]
async fn audit(pair: (u64, String)) {
    let _ = pair;
}

fn main() {}
