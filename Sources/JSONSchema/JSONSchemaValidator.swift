// SPDX-License-Identifier: Apache-2.0

/// A JSON Schema draft 2020-12 validator, compiled once and reused.
///
/// Compilation resolves every `$ref`, checks every keyword value, compiles every pattern and flattens
/// the schema into an arena of nodes that refer to each other by index (so recursive schemas cost
/// nothing extra and there are no reference cycles to leak). Validation then walks the arena without
/// touching the schema document again.
///
/// Two outputs, as the specification defines them: ``isValid(_:)`` is the "flag" output, stopping at
/// the first failure and allocating almost nothing; ``validate(_:)`` is the "basic" output, a flat
/// list of ``ValidationError``s with exact instance and keyword locations (`[]` means valid).
///
/// Every draft 2020-12 keyword is implemented, including `unevaluatedProperties`/`unevaluatedItems`
/// (annotations collected only from successful in-place sub-schemas) and `$dynamicRef` (dynamic scope
/// tracked only when a schema uses it). What the validator cannot honour is refused when compiling
/// instead of being silently ignored: other dialects, required unknown vocabularies, `multipleOf`
/// beyond 19 significant digits (see ``SchemaCompilationError``). Keywords that are not part of draft
/// 2020-12 at all are annotations and ignored, as the specification requires, with one exception:
/// draft 7's `dependencies`, which the 2020-12 meta-schema still declares (deprecated), is applied with
/// its old meaning (`dependentSchemas` and `dependentRequired` in one keyword) rather than ignored.
///
/// - Important: A validator is immutable and `Sendable`: compile it once at start-up and call it from
///   any number of threads or tasks concurrently.
public struct JSONSchemaValidator: Sendable {
    /// Compilation options.
    public struct Options: Sendable {
        /// Whether `format` is an assertion (invalid values fail) rather than an annotation. Default
        /// `false`, as draft 2020-12 requires. Formats this module does not know are always ignored.
        public var formatAssertion: Bool
        /// Schemas that `$ref` (and `$schema`) may load, by absolute URI without fragment. Default `[:]`.
        /// Nothing is ever fetched from the network; the draft 2020-12 meta-schemas are built in.
        public var remoteSchemas: [String: JSONValue]
        /// Most errors ``JSONSchemaValidator/validate(_:)`` returns for one instance. Default 100.
        /// Bounds the work and memory spent describing a hostile instance with millions of errors;
        /// the validity verdict does not depend on it.
        public var maxErrors: Int

        /// Creates options; every parameter defaults to the documented default.
        public init(formatAssertion: Bool = false, remoteSchemas: [String: JSONValue] = [:], maxErrors: Int = 100) {
            self.formatAssertion = formatAssertion
            self.remoteSchemas = remoteSchemas
            self.maxErrors = maxErrors
        }
    }

    private let compiled: CompiledSchema

    /// Compiles `schema`.
    ///
    /// - Parameters:
    ///   - schema: The root schema (object or boolean). Without `$id` its base URI is empty, so only
    ///     fragment and absolute references resolve.
    ///   - options: See ``Options``.
    /// - Throws: ``SchemaCompilationError`` naming the offending location.
    public init(schema: JSONValue, options: Options = .init()) throws(SchemaCompilationError) {
        var registry = SchemaRegistry(remotes: options.remoteSchemas)
        try registry.addDocument(schema, uri: "")
        guard let root = registry.resources[""] else {
            throw SchemaCompilationError(.invalidSchema, at: "#", "the schema could not be indexed")
        }
        var compiler = SchemaCompiler(registry: registry, formatAssertion: options.formatAssertion)
        let rootIndex = try compiler.compileEntry(root)
        try compiler.resolveDynamicAnchors()
        try compiler.checkInPlaceCycles()
        compiled = CompiledSchema(tables: compiler.tables, root: rootIndex, maxErrors: max(1, options.maxErrors))
    }

    /// Whether `instance` is valid ("flag" output): stops at the first failure.
    public func isValid(_ instance: JSONValue) -> Bool {
        var evaluation = SchemaEvaluation(compiled: compiled, collecting: false)
        return evaluation.evaluate(compiled.root, instance, -1) && !evaluation.aborted
    }

    /// All errors for `instance` ("basic" output), in evaluation order; `[]` means valid.
    ///
    /// Valid instances cost the same as ``isValid(_:)``: the error-collecting pass only runs once the
    /// fast pass has found the instance invalid. At most ``Options/maxErrors`` errors are returned.
    public func validate(_ instance: JSONValue) -> [ValidationError] {
        if isValid(instance) { return [] }
        var evaluation = SchemaEvaluation(compiled: compiled, collecting: true)
        _ = evaluation.evaluate(compiled.root, instance, -1)
        if let abortError = evaluation.abortError, !evaluation.errors.contains(abortError) {
            evaluation.errors.append(abortError)
        }
        if evaluation.errors.isEmpty {
            // Cannot happen for a consistent evaluator; never report an invalid instance with no reason.
            return [
                ValidationError(
                    instanceLocation: "",
                    keywordLocation: "",
                    message: "the instance does not match the schema"
                )
            ]
        }
        return evaluation.errors
    }
}
