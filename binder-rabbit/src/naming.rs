//! Exchange, queue and routing-key names, exactly as Spring Cloud Stream's RabbitMQ binder
//! declares them by default, and Spring's partition selection.
//!
//! | what | name |
//! |---|---|
//! | destination | topic exchange `<destination>` |
//! | group queue | `<destination>.<group>`, bound with `#` |
//! | anonymous queue | `<destination>.anonymous.<base64url uuid>` (exclusive, auto-delete) |
//! | partition routing key | `<destination>-<n>` |
//! | partitioned group queue | `<destination>.<group>-<instance-index>` |
//! | dead-letter exchange | direct exchange `DLX` |
//! | dead-letter queue | `<destination>.<group>.dlq`, bound to `DLX` with `<destination>.<group>` |
//!
//! ```
//! use bindery_rabbit::naming;
//! assert_eq!(naming::group_queue("orders", "billing"), "orders.billing");
//! assert_eq!(naming::dead_letter_queue("orders", "billing"), "orders.billing.dlq");
//! assert_eq!(naming::partition_routing_key("orders", 2), "orders-2");
//! assert_eq!(naming::DEAD_LETTER_EXCHANGE, "DLX");
//! ```

/// Spring's dead-letter exchange (a durable direct exchange).
pub const DEAD_LETTER_EXCHANGE: &str = "DLX";

/// The routing key group queues are bound with when not partitioned.
pub const BIND_ALL: &str = "#";

/// The exchange a destination is published to: the destination name itself.
///
/// ```
/// assert_eq!(bindery_rabbit::naming::exchange("orders.v1"), "orders.v1");
/// ```
pub fn exchange(destination: &str) -> String {
    destination.to_string()
}

/// The durable queue of a consumer group.
///
/// ```
/// assert_eq!(bindery_rabbit::naming::group_queue("orders", "billing"), "orders.billing");
/// ```
pub fn group_queue(destination: &str, group: &str) -> String {
    format!("{destination}.{group}")
}

/// The queue of a partitioned consumer group instance.
///
/// ```
/// assert_eq!(bindery_rabbit::naming::partitioned_queue("orders", "billing", 1), "orders.billing-1");
/// ```
pub fn partitioned_queue(destination: &str, group: &str, instance_index: u32) -> String {
    format!("{destination}.{group}-{instance_index}")
}

/// The routing key of partition `n`.
///
/// ```
/// assert_eq!(bindery_rabbit::naming::partition_routing_key("orders", 0), "orders-0");
/// ```
pub fn partition_routing_key(destination: &str, partition: u32) -> String {
    format!("{destination}-{partition}")
}

/// The dead-letter queue of a group.
///
/// ```
/// assert_eq!(bindery_rabbit::naming::dead_letter_queue("orders", "billing"), "orders.billing.dlq");
/// ```
pub fn dead_letter_queue(destination: &str, group: &str) -> String {
    format!("{destination}.{group}.dlq")
}

/// The routing key the dead-letter queue is bound to `DLX` with (and the group queue's
/// `x-dead-letter-routing-key`).
///
/// ```
/// assert_eq!(bindery_rabbit::naming::dead_letter_routing_key("orders", "billing"), "orders.billing");
/// ```
pub fn dead_letter_routing_key(destination: &str, group: &str) -> String {
    group_queue(destination, group)
}

/// A fresh anonymous queue name, as Spring's `Base64UrlNamingStrategy` with prefix
/// `<destination>.anonymous.` makes it: the 16 bytes of a random UUID, base64url, no padding.
///
/// ```
/// let q = bindery_rabbit::naming::anonymous_queue("ticks");
/// assert!(q.starts_with("ticks.anonymous."));
/// assert_eq!(q.len(), "ticks.anonymous.".len() + 22);
/// ```
pub fn anonymous_queue(destination: &str) -> String {
    format!("{destination}.anonymous.{}", base64url(uuid::Uuid::new_v4().as_bytes()))
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1; // 1 byte → 2 chars, 2 → 3, 3 → 4 (no padding)
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 code units, in
/// wrapping 32-bit arithmetic. Spring hashes partition keys with it, so bindery must too.
///
/// ```
/// use bindery_rabbit::naming::java_string_hash;
/// assert_eq!(java_string_hash(""), 0);
/// assert_eq!(java_string_hash("hello"), 99_162_322);
/// ```
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The partition Spring Cloud Stream's default selector picks for a string key:
/// `abs(key.hashCode()) % partition_count` (with `Integer.MIN_VALUE` hashing to 0).
///
/// ```
/// assert_eq!(bindery_rabbit::naming::select_partition("hello", 4), 2); // 99162322 % 4
/// assert_eq!(bindery_rabbit::naming::select_partition("anything", 1), 0);
/// ```
pub fn select_partition(key: &str, partition_count: u32) -> u32 {
    if partition_count <= 1 {
        return 0;
    }
    let hash = java_string_hash(key);
    let hash = if hash == i32::MIN { 0 } else { hash.abs() };
    (hash as u32) % partition_count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_code_matches_the_jvm() {
        // Values printed by `System.out.println("...".hashCode())` on a JVM.
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("abc"), 96_354);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("Hello, World!"), 1_498_789_909);
        assert_eq!(java_string_hash("customer-1"), -1_581_185_534);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // Non-ASCII: UTF-16 units, not UTF-8 bytes. "é" is U+00E9 = 233.
        assert_eq!(java_string_hash("é"), 233);
        // Outside the BMP: a surrogate pair, "😀" = D83D DE00 → 0xD83D * 31 + 0xDE00.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
        assert_eq!(java_string_hash("😀"), 1_772_899);
        assert_eq!(java_string_hash("grüße"), 98_768_023);
    }

    #[test]
    fn partition_selection_is_springs() {
        assert_eq!(select_partition("hello", 4), 99_162_322 % 4);
        // Negative hash codes are made positive first.
        let h = java_string_hash("Hello, World!!");
        assert!(h < 0, "{h}");
        assert_eq!(select_partition("Hello, World!!", 5), (h.unsigned_abs()) % 5);
        assert_eq!(select_partition("polygenelubricants", 3), 0);
    }

    #[test]
    fn spring_names() {
        assert_eq!(group_queue("d", "g"), "d.g");
        assert_eq!(partitioned_queue("d", "g", 3), "d.g-3");
        assert_eq!(dead_letter_queue("d", "g"), "d.g.dlq");
        assert_eq!(dead_letter_routing_key("d", "g"), "d.g");
        assert_eq!(partition_routing_key("d", 7), "d-7");
        let a = anonymous_queue("d");
        let b = anonymous_queue("d");
        assert_ne!(a, b);
        let suffix = a.strip_prefix("d.anonymous.").unwrap();
        assert_eq!(suffix.len(), 22);
        assert!(suffix.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn base64url_known_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
