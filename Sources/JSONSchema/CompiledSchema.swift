// SPDX-License-Identifier: Apache-2.0

/// Everything the compiler produces, before it is frozen into a ``CompiledSchema``.
struct CompiledTables {
    var nodes: [SchemaNode] = []
    /// Keyword location of each node relative to its evaluation entry (same index as `nodes`).
    var paths: [String] = []
    /// Absolute location of each node: resource URI + `#` + percent-encoded JSON Pointer.
    var absolutes: [String] = []
    var keywords: [Keyword] = []
    var children: [Int32] = []
    var values: [JSONValue] = []
    var enums: [(values: [JSONValue], set: Set<JSONValue>?)] = []
    var numbers: [JSONNumber] = []
    var regexes: [ECMARegex] = []
    var formats: [(name: String, check: @Sendable (String) -> Bool)] = []
    var stringLists: [[String]] = []
    var dependentRequired: [[(key: String, required: [String])]] = []
    var dependentSchemas: [[(key: String, node: Int32)]] = []
    var applicators: [PropertyApplicator] = []
    var anchorNames: [String] = []
    /// `dynamicAnchors[resource][anchor]` = node carrying that `$dynamicAnchor` in that resource, or -1.
    var dynamicAnchors: [[Int32]] = []
}

/// The immutable result of compilation, shared by every copy of a validator.
///
/// Nodes, keywords and child lists are plain data in buffers allocated once here, so evaluation reads
/// them without reference counting; compiled regexes live in such a buffer too, so they are used in
/// place. The rest (values, names) stays in ordinary arrays only touched by the keywords that need them.
///
/// - Important: Immutable after `init`: the unsafe buffers are allocated and initialised in `init`,
///   never written afterwards, and freed in `deinit`, so one instance is safely shared by any number of
///   threads (hence `@unchecked Sendable`).
final class CompiledSchema: @unchecked Sendable {
    let nodes: UnsafeBufferPointer<SchemaNode>
    let keywords: UnsafeBufferPointer<Keyword>
    let children: UnsafeBufferPointer<Int32>
    let paths: [String]
    let absolutes: [String]
    let values: [JSONValue]
    let enums: [(values: [JSONValue], set: Set<JSONValue>?)]
    let numbers: [JSONNumber]
    /// In a frozen buffer too: `regexes[i].search(_:)` then runs in place, without copying the program.
    let regexes: UnsafeBufferPointer<ECMARegex>
    let formats: [(name: String, check: @Sendable (String) -> Bool)]
    let stringLists: [[String]]
    let dependentRequired: [[(key: String, required: [String])]]
    let dependentSchemas: [[(key: String, node: Int32)]]
    let applicators: [PropertyApplicator]
    let anchorNames: [String]
    let dynamicAnchors: [[Int32]]
    let usesDynamicScope: Bool
    let root: Int32
    let maxErrors: Int

    init(tables: CompiledTables, root: Int32, maxErrors: Int) {
        nodes = Self.freeze(tables.nodes)
        keywords = Self.freeze(tables.keywords)
        children = Self.freeze(tables.children)
        paths = tables.paths
        absolutes = tables.absolutes
        values = tables.values
        enums = tables.enums
        numbers = tables.numbers
        regexes = Self.freeze(tables.regexes)
        formats = tables.formats
        stringLists = tables.stringLists
        dependentRequired = tables.dependentRequired
        dependentSchemas = tables.dependentSchemas
        applicators = tables.applicators
        anchorNames = tables.anchorNames
        dynamicAnchors = tables.dynamicAnchors
        usesDynamicScope = tables.keywords.contains {
            if case .dynamicRef(_, let anchor) = $0 { return anchor >= 0 }
            return false
        }
        self.root = root
        self.maxErrors = maxErrors
    }

    private static func freeze<T>(_ array: [T]) -> UnsafeBufferPointer<T> {
        let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: array.count)
        _ = buffer.initialize(from: array)
        return UnsafeBufferPointer(buffer)
    }

    deinit {
        UnsafeMutableBufferPointer(mutating: nodes).deinitialize().deallocate()
        UnsafeMutableBufferPointer(mutating: keywords).deinitialize().deallocate()
        UnsafeMutableBufferPointer(mutating: children).deinitialize().deallocate()
        UnsafeMutableBufferPointer(mutating: regexes).deinitialize().deallocate()
    }
}
