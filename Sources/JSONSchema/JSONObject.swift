// SPDX-License-Identifier: Apache-2.0

/// A JSON object: ordered `(key, value)` members with unique keys, looked up by Unicode scalars.
///
/// Order is kept so that re-serialising a document reproduces it, and so that error lists are
/// deterministic. Keys compare by Unicode scalars, not by Swift's canonical equivalence: `"\u{E4}"` and
/// `"a\u{308}"` are two different keys, as RFC 8259 and JSON Schema require. Small objects (the common
/// case) are searched linearly; objects with more than ``indexThreshold`` members also carry a hash
/// index so lookups stay O(1) for large documents.
///
/// Equality is JSON Schema instance equality: same keys with equal values, in any order.
public struct JSONObject: Sendable {
    /// One member. A struct rather than a tuple so that copies use specialised code, not the
    /// runtime's generic tuple witnesses (measurably faster in the parser).
    struct Member: Sendable {
        var key: String
        var value: JSONValue
    }

    var members: [Member]
    var index: KeyIndex?

    /// Objects with more members than this get a hash index.
    static let indexThreshold = 8

    /// Creates an empty object.
    public init() {
        members = []
        index = nil
    }

    /// Creates an object from ordered pairs.
    ///
    /// If a key occurs more than once, the later value replaces the earlier one and the key keeps
    /// its first position (the parser, which must reject duplicates, checks before calling this).
    public init(_ pairs: [(String, JSONValue)]) {
        self.init()
        members.reserveCapacity(pairs.count)
        for (key, value) in pairs { self[key] = value }
    }

    /// Trusted construction from unique members (the parser has already rejected duplicates).
    init(uniqueMembers: [Member], index: KeyIndex?) {
        self.members = uniqueMembers
        self.index = index
        if index == nil && uniqueMembers.count > Self.indexThreshold { rebuildIndex() }
    }

    /// Number of members.
    public var count: Int { members.count }

    /// Whether the object has no members.
    public var isEmpty: Bool { members.isEmpty }

    /// The keys, in document order.
    public var keys: [String] { members.map(\.key) }

    /// The values, in document order.
    public var values: [JSONValue] { members.map(\.value) }

    /// Position of `key` in ``members``, comparing by Unicode scalars.
    func position(of key: String) -> Int? {
        if let index {
            return index.find(hash: KeyIndex.hash(key)) { ScalarString.equal(members[$0].key, key) }
        }
        for position in members.indices where ScalarString.equal(members[position].key, key) {
            return position
        }
        return nil
    }

    /// The value for `key` (compared by Unicode scalars), or `nil`. Setting `nil` removes the member;
    /// setting a new key appends it.
    public subscript(key: String) -> JSONValue? {
        get {
            guard let position = position(of: key) else { return nil }
            return members[position].value
        }
        set {
            if let position = position(of: key) {
                if let newValue {
                    members[position].value = newValue
                } else {
                    members.remove(at: position)
                    rebuildIndex()
                }
            } else if let newValue {
                members.append(Member(key: key, value: newValue))
                if index != nil {
                    index!.insert(hash: KeyIndex.hash(key), position: members.count - 1)
                } else if members.count > Self.indexThreshold {
                    rebuildIndex()
                }
            }
        }
    }

    private mutating func rebuildIndex() {
        guard members.count > Self.indexThreshold else {
            index = nil
            return
        }
        var built = KeyIndex(minimumCapacity: members.count)
        for (position, member) in members.enumerated() {
            built.insert(hash: KeyIndex.hash(member.key), position: position)
        }
        index = built
    }
}

extension JSONObject: Sequence {
    public typealias Element = (key: String, value: JSONValue)

    /// Iterates the members in document order.
    public struct Iterator: IteratorProtocol {
        var base: IndexingIterator<[Member]>
        public mutating func next() -> Element? {
            guard let member = base.next() else { return nil }
            return (member.key, member.value)
        }
    }

    public func makeIterator() -> Iterator { Iterator(base: members.makeIterator()) }

    public var underestimatedCount: Int { members.count }
}

extension JSONObject: Hashable {
    /// Same keys (by Unicode scalars) with equal values, regardless of order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for member in lhs.members {
            guard let other = rhs[member.key], other == member.value else { return false }
        }
        return true
    }

    /// Order-independent: the per-member hashes are summed.
    public func hash(into hasher: inout Hasher) {
        var sum = 0
        for member in members {
            var memberHasher = Hasher()
            ScalarString.hash(member.key, into: &memberHasher)
            memberHasher.combine(member.value)
            sum = sum &+ memberHasher.finalize()
        }
        hasher.combine(members.count)
        hasher.combine(sum)
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// Keeps the literal's order.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }
}

/// Hash index from keys to member positions, for large objects.
///
/// Open addressing with linear probing over two parallel arrays (stored hash, position). Keys are
/// not copied into the index: a probe compares the stored hash, then the member's key in place. The
/// stored hash makes growth a plain re-insertion (no key is hashed twice), which keeps objects with
/// millions of members linear. Hashes come from the standard library's per-process seeded `Hasher`
/// (SipHash), so attackers cannot precompute colliding keys.
struct KeyIndex: Sendable {
    private var hashes: [Int]
    private var positions: [Int32]
    private(set) var count = 0

    init(minimumCapacity: Int) {
        var capacity = 16
        while capacity < minimumCapacity * 2 { capacity <<= 1 }
        hashes = Array(repeating: 0, count: capacity)
        positions = Array(repeating: -1, count: capacity)
    }

    static func hash(_ key: String) -> Int {
        var hasher = Hasher()
        ScalarString.hash(key, into: &hasher)
        return hasher.finalize()
    }

    /// The position stored for a key with `hash` for which `matches(position)` is true.
    func find(hash: Int, matches: (Int) -> Bool) -> Int? {
        let mask = positions.count - 1
        var slot = hash & mask
        while true {
            let position = positions[slot]
            if position < 0 { return nil }
            if hashes[slot] == hash && matches(Int(position)) { return Int(position) }
            slot = (slot + 1) & mask
        }
    }

    /// Records `position` for a key with `hash` (the caller has checked it is not present).
    mutating func insert(hash: Int, position: Int) {
        if (count + 1) * 2 > positions.count { grow() }
        let mask = positions.count - 1
        var slot = hash & mask
        while positions[slot] >= 0 { slot = (slot + 1) & mask }
        hashes[slot] = hash
        positions[slot] = Int32(truncatingIfNeeded: position)
        count += 1
    }

    private mutating func grow() {
        let oldHashes = hashes
        let oldPositions = positions
        hashes = Array(repeating: 0, count: oldPositions.count * 2)
        positions = Array(repeating: -1, count: oldPositions.count * 2)
        count = 0
        for slot in oldPositions.indices where oldPositions[slot] >= 0 {
            insert(hash: oldHashes[slot], position: Int(oldPositions[slot]))
        }
    }
}
