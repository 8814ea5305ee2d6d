// SPDX-License-Identifier: Apache-2.0

/// An ECMA-262 regular expression (`u` flag) for `pattern`, `patternProperties` and `format: regex`.
///
/// Why our own engine: JSON Schema requires ECMA-262 semantics, and the platform engines differ in ways
/// that matter for validation (`NSRegularExpression`/ICU: `\d` matches non-ASCII digits, `\w` matches
/// `é`, `$` matches before a final `\n`; Swift `Regex` differs too), and none of them bounds its work:
/// `^(a+)+$` on 30 characters takes seconds. Here `\d` is `[0-9]`, `\w` is `[A-Za-z0-9_]`, `$` matches
/// only at the very end, `.` excludes only line terminators, and matching is by code point.
///
/// The engine is a backtracking VM with an explicit backtrack stack (no recursion per character, so
/// long inputs cannot overflow the thread stack) and a **step budget** linear in the input:
/// `1,000,000 + 32 × (input scalars + 1) × program size` steps. Patterns that would backtrack
/// catastrophically on a hostile string stop at the budget and report ``Outcome/budgetExceeded``; the
/// validator treats that as a failure of the whole validation (fail closed, even under `not`).
/// Ordinary patterns (`^[A-Za-z0-9_.@:-]+$`) never come near the budget; the most common shape, one
/// character set repeated between `^` and `$`, skips the VM entirely.
///
/// Supported: alternation, groups (capturing, non-capturing, named), greedy and lazy quantifiers
/// including `{n,m}`, classes with ranges and escapes, `\d \D \w \W \s \S`, `\p{…}`/`\P{…}` for general
/// categories and the binary properties the Swift standard library exposes (not `Script=`), `\b \B`,
/// lookahead and lookbehind (variable width), back references (numbered and named), and all `u`-mode
/// character escapes. Flags other than `u` do not exist in JSON Schema.
struct ECMARegex: Sendable {
    /// Result of a search.
    enum Outcome: Sendable, Equatable {
        case match
        case noMatch
        /// The step budget ran out; the answer is unknown.
        case budgetExceeded
    }

    /// The pattern text.
    let source: String
    private let programs: [[RegexInstruction]]
    private let sets: [CharSet]
    private let registerCount: Int
    private let anchoredStart: Bool
    /// `^set{min,max}$`: checked without the VM.
    private let wholeSet: (set: Int, min: Int, max: Int)?

    /// Compiles `pattern`.
    ///
    /// - Throws: ``RegexSyntaxError`` if it is not a valid ECMA-262 `u`-mode pattern.
    init(_ pattern: String) throws(RegexSyntaxError) {
        var parser = RegexParser(pattern)
        let tree = try parser.parse()
        var compiler = RegexCompiler(captureCount: parser.groupCount)
        let main = compiler.compileProgram(tree, backward: false)
        compiler.programs[0] = main
        source = pattern
        programs = compiler.programs
        sets = compiler.sets
        registerCount = 2 * parser.groupCount + 2 * compiler.loopCount
        if case .lineStart = main.first { anchoredStart = true } else { anchoredStart = false }
        if main.count == 4, case .lineStart = main[0], case .repeatSingle(.set(let set), let min, let max, _) = main[1],
            case .lineEnd = main[2]
        {
            wholeSet = (set, min, max)
        } else {
            wholeSet = nil
        }
    }

    /// Whether `text` contains a match (an unanchored search, as JSON Schema requires).
    func search(_ text: String) -> Outcome {
        // `withUTF8` is free for native strings and copies small (inline) ones to the stack.
        var text = text
        return text.withUTF8 { search(bytes: $0) }
    }

    private func search(bytes: UnsafeBufferPointer<UInt8>) -> Outcome {
        if let wholeSet {
            let set = sets[wholeSet.set]
            var count = 0
            var position = 0
            while position < bytes.count {
                let (scalar, length) = UTF8Cursor.decode(bytes, at: position)
                guard set.contains(scalar) else { return .noMatch }
                count += 1
                position += length
            }
            return count >= wholeSet.min && count <= wholeSet.max ? .match : .noMatch
        }
        let programSize = programs.reduce(0) { $0 + $1.count }
        let budget = 1_000_000 &+ 32 &* (bytes.count &+ 1) &* programSize
        var vm = RegexVM(programs: programs, sets: sets, text: bytes, registerCount: registerCount, budget: budget)
        var start = 0
        while true {
            if vm.run(program: 0, start: start, backward: false) != nil { return .match }
            if vm.exhausted { return .budgetExceeded }
            if anchoredStart || start >= bytes.count { return .noMatch }
            start += UTF8Cursor.decode(bytes, at: start).length
        }
    }
}

/// One VM instruction.
enum RegexInstruction: Sendable {
    enum Single: Sendable {
        case char(UInt32)
        case set(Int)
        case dot
    }

    case char(UInt32)
    case set(Int)
    case dot
    /// Try `prefer` first; on failure resume at `other`.
    case split(prefer: Int, other: Int)
    case jump(Int)
    case save(Int)
    case lineStart
    case lineEnd
    case wordBoundary(negated: Bool)
    case backreference(Int)
    case look(program: Int, behind: Bool, negated: Bool)
    /// A single-scalar matcher repeated `min...max` times, with O(1) backtrack state.
    case repeatSingle(Single, min: Int, max: Int, greedy: Bool)
    case loopInit(Int)
    case loopCheck(loop: Int, min: Int, max: Int, greedy: Bool, exit: Int)
    case loopStart(Int)
    case loopEnd(loop: Int, min: Int, check: Int)
    case clearCaptures(from: Int, to: Int)
    case match
}

/// Turns a ``RegexNode`` tree into VM programs (program 0 is the pattern; lookarounds get their own).
struct RegexCompiler {
    var programs: [[RegexInstruction]] = [[]]
    var sets: [CharSet] = []
    var loopCount = 0
    let captureCount: Int

    init(captureCount: Int) { self.captureCount = captureCount }

    mutating func compileProgram(_ node: RegexNode, backward: Bool) -> [RegexInstruction] {
        var code: [RegexInstruction] = []
        compile(node, backward: backward, into: &code)
        code.append(.match)
        return code
    }

    private mutating func addSet(_ set: CharSet) -> Int {
        sets.append(set)
        return sets.count - 1
    }

    private mutating func single(_ node: RegexNode) -> RegexInstruction.Single? {
        switch node {
        case .char(let c): return .char(c)
        case .set(let set): return .set(addSet(set))
        case .dot: return .dot
        case .group(let inner, capture: nil): return single(inner)
        default: return nil
        }
    }

    private mutating func compile(_ node: RegexNode, backward: Bool, into code: inout [RegexInstruction]) {
        switch node {
        case .empty:
            break
        case .char(let c):
            code.append(.char(c))
        case .set(let set):
            code.append(.set(addSet(set)))
        case .dot:
            code.append(.dot)
        case .sequence(let nodes):
            for item in (backward ? nodes.reversed() : nodes) { compile(item, backward: backward, into: &code) }
        case .alternation(let alternatives):
            var jumps: [Int] = []
            for (position, alternative) in alternatives.enumerated() {
                if position < alternatives.count - 1 {
                    let split = code.count
                    code.append(.split(prefer: split + 1, other: -1))
                    compile(alternative, backward: backward, into: &code)
                    jumps.append(code.count)
                    code.append(.jump(-1))
                    code[split] = .split(prefer: split + 1, other: code.count)
                } else {
                    compile(alternative, backward: backward, into: &code)
                }
            }
            for jump in jumps { code[jump] = .jump(code.count) }
        case .group(let inner, let capture):
            guard let capture else {
                compile(inner, backward: backward, into: &code)
                return
            }
            let startRegister = 2 * (capture - 1)
            code.append(.save(backward ? startRegister + 1 : startRegister))
            compile(inner, backward: backward, into: &code)
            code.append(.save(backward ? startRegister : startRegister + 1))
        case .repetition(let inner, let min, let max, let greedy, let firstGroup, let endGroup):
            let upper = max ?? Int.max
            if upper == 0 { return }
            if firstGroup == endGroup, let matcher = single(inner) {
                code.append(.repeatSingle(matcher, min: min, max: upper, greedy: greedy))
                return
            }
            let loop = loopCount
            loopCount += 1
            code.append(.loopInit(loop))
            let check = code.count
            code.append(.jump(-1))  // patched below
            code.append(.loopStart(loop))
            if endGroup > firstGroup { code.append(.clearCaptures(from: firstGroup, to: endGroup)) }
            compile(inner, backward: backward, into: &code)
            code.append(.loopEnd(loop: loop, min: min, check: check))
            code[check] = .loopCheck(loop: loop, min: min, max: upper, greedy: greedy, exit: code.count)
        case .lineStart:
            code.append(.lineStart)
        case .lineEnd:
            code.append(.lineEnd)
        case .wordBoundary(let negated):
            code.append(.wordBoundary(negated: negated))
        case .look(let inner, let behind, let negated):
            let index = programs.count
            programs.append([])
            let program = compileProgram(inner, backward: behind)
            programs[index] = program
            code.append(.look(program: index, behind: behind, negated: negated))
        case .backreference(let group):
            code.append(.backreference(group))
        }
    }
}

/// Scalar stepping over valid UTF-8 (Swift strings are always valid).
enum UTF8Cursor {
    @inline(__always)
    static func decode(_ p: UnsafeBufferPointer<UInt8>, at i: Int) -> (scalar: UInt32, length: Int) {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1]) & 0x3F, 2) }
        if b0 < 0xF0 {
            return ((b0 & 0x0F) << 12 | (UInt32(p[i + 1]) & 0x3F) << 6 | UInt32(p[i + 2]) & 0x3F, 3)
        }
        return (
            (b0 & 0x07) << 18 | (UInt32(p[i + 1]) & 0x3F) << 12 | (UInt32(p[i + 2]) & 0x3F) << 6 | UInt32(p[i + 3])
                & 0x3F,
            4
        )
    }

    /// The scalar ending at `i` and where it starts.
    @inline(__always)
    static func decodeBefore(_ p: UnsafeBufferPointer<UInt8>, at i: Int) -> (scalar: UInt32, start: Int) {
        var start = i - 1
        while p[start] & 0xC0 == 0x80 { start -= 1 }
        return (decode(p, at: start).scalar, start)
    }
}

/// Executes ``RegexInstruction`` programs over UTF-8 text (positions are byte offsets on scalar boundaries).
struct RegexVM {
    private struct Frame {
        enum Kind: UInt8 {
            case branch, restore, greedy, lazy
        }
        var kind: Kind
        var pc: Int
        var position: Int
        /// restore: register; greedy/lazy: repetitions so far.
        var a: Int
        /// restore: old value; greedy: minimum; lazy: maximum.
        var b: Int
    }

    let programs: [[RegexInstruction]]
    let sets: [CharSet]
    let text: UnsafeBufferPointer<UInt8>
    private var registers: [Int]
    private var stack: [Frame] = []
    private var steps = 0
    private let budget: Int
    private(set) var exhausted = false

    init(
        programs: [[RegexInstruction]],
        sets: [CharSet],
        text: UnsafeBufferPointer<UInt8>,
        registerCount: Int,
        budget: Int
    ) {
        self.programs = programs
        self.sets = sets
        self.text = text
        self.registers = Array(repeating: -1, count: registerCount)
        self.budget = budget
    }

    @inline(__always)
    private func matches(_ single: RegexInstruction.Single, _ scalar: UInt32) -> Bool {
        switch single {
        case .char(let c): return scalar == c
        case .set(let index): return sets[index].contains(scalar)
        case .dot: return !RegexVM.isLineTerminator(scalar)
        }
    }

    @inline(__always)
    private static func isLineTerminator(_ scalar: UInt32) -> Bool {
        scalar == 0x0A || scalar == 0x0D || scalar == 0x2028 || scalar == 0x2029
    }

    /// The next scalar in the matching direction and the position after it.
    @inline(__always)
    private func step(_ position: Int, backward: Bool) -> (scalar: UInt32, next: Int)? {
        if backward {
            guard position > 0 else { return nil }
            let (scalar, start) = UTF8Cursor.decodeBefore(text, at: position)
            return (scalar, start)
        }
        guard position < text.count else { return nil }
        let (scalar, length) = UTF8Cursor.decode(text, at: position)
        return (scalar, position + length)
    }

    @inline(__always)
    private func isWordByte(_ position: Int) -> Bool {
        guard position >= 0, position < text.count else { return false }
        return CharSet.word.ranges.contains { $0.contains(UInt32(text[position])) }
    }

    @inline(__always)
    private mutating func setRegister(_ register: Int, _ value: Int) {
        let old = registers[register]
        if old != value {
            stack.append(Frame(kind: .restore, pc: 0, position: 0, a: register, b: old))
            registers[register] = value
        }
    }

    /// Runs `program` from `start`; returns the end position of the first match or `nil`.
    ///
    /// On failure every register change made by this run has been undone and the stack is back to
    /// its height on entry. On success the frames pushed by this run are still on the stack.
    mutating func run(program: Int, start: Int, backward: Bool) -> Int? {
        let base = stack.count
        let code = programs[program]
        var pc = 0
        var position = start
        var ok = true
        while true {
            if !ok {
                // Backtrack to the most recent choice point of this run.
                var resumed = false
                while stack.count > base {
                    var frame = stack.removeLast()
                    steps &+= 1
                    switch frame.kind {
                    case .restore:
                        registers[frame.a] = frame.b
                        continue
                    case .branch:
                        pc = frame.pc
                        position = frame.position
                        resumed = true
                    case .greedy:
                        // Give back one repetition.
                        guard case .repeatSingle = code[frame.pc - 1] else { continue }
                        if backward {
                            position = frame.position + UTF8Cursor.decode(text, at: frame.position).length
                        } else {
                            position = UTF8Cursor.decodeBefore(text, at: frame.position).start
                        }
                        frame.a -= 1
                        frame.position = position
                        if frame.a > frame.b { stack.append(frame) }
                        pc = frame.pc
                        resumed = true
                    case .lazy:
                        // Take one more repetition, if possible.
                        guard case .repeatSingle(let single, _, _, _) = code[frame.pc - 1], frame.a < frame.b,
                            let (scalar, next) = step(frame.position, backward: backward), matches(single, scalar)
                        else { continue }
                        frame.a += 1
                        frame.position = next
                        if frame.a < frame.b { stack.append(frame) }
                        pc = frame.pc
                        position = next
                        resumed = true
                    }
                    if resumed { break }
                }
                if !resumed { return nil }
                ok = true
            }
            steps &+= 1
            if steps > budget {
                exhausted = true
                unwind(to: base)
                return nil
            }
            switch code[pc] {
            case .char(let c):
                if let (scalar, next) = step(position, backward: backward), scalar == c {
                    position = next
                    pc += 1
                } else {
                    ok = false
                }
            case .set(let index):
                if let (scalar, next) = step(position, backward: backward), sets[index].contains(scalar) {
                    position = next
                    pc += 1
                } else {
                    ok = false
                }
            case .dot:
                if let (scalar, next) = step(position, backward: backward), !RegexVM.isLineTerminator(scalar) {
                    position = next
                    pc += 1
                } else {
                    ok = false
                }
            case .split(let prefer, let other):
                stack.append(Frame(kind: .branch, pc: other, position: position, a: 0, b: 0))
                pc = prefer
            case .jump(let target):
                pc = target
            case .save(let register):
                setRegister(register, position)
                pc += 1
            case .lineStart:
                if position == 0 { pc += 1 } else { ok = false }
            case .lineEnd:
                if position == text.count { pc += 1 } else { ok = false }
            case .wordBoundary(let negated):
                let boundary = isWordByte(position - 1) != isWordByte(position)
                if boundary != negated { pc += 1 } else { ok = false }
            case .backreference(let group):
                let captureStart = registers[2 * (group - 1)]
                let captureEnd = registers[2 * (group - 1) + 1]
                if captureStart < 0 || captureEnd < 0 || captureEnd <= captureStart {
                    pc += 1
                    break
                }
                let length = captureEnd - captureStart
                let from = backward ? position - length : position
                if from >= 0, from + length <= text.count,
                    UnsafeBufferPointer(rebasing: text[from..<from + length]).elementsEqual(
                        UnsafeBufferPointer(rebasing: text[captureStart..<captureEnd])
                    )
                {
                    position = backward ? from : from + length
                    pc += 1
                } else {
                    ok = false
                }
            case .look(let sub, let behind, let negated):
                let snapshot = registers
                let lookBase = stack.count
                let matched = run(program: sub, start: position, backward: behind) != nil
                if exhausted {
                    unwind(to: base)
                    return nil
                }
                if matched {
                    stack.removeSubrange(lookBase...)  // lookarounds are atomic
                    if negated {
                        registers = snapshot
                        ok = false
                    } else {
                        for register in registers.indices where registers[register] != snapshot[register] {
                            stack.append(
                                Frame(kind: .restore, pc: 0, position: 0, a: register, b: snapshot[register])
                            )
                        }
                        pc += 1
                    }
                } else if negated {
                    pc += 1
                } else {
                    ok = false
                }
            case .repeatSingle(let single, let min, let max, let greedy):
                var count = 0
                var current = position
                let limit = greedy ? max : min
                while count < limit, let (scalar, next) = step(current, backward: backward), matches(single, scalar) {
                    count += 1
                    current = next
                }
                steps &+= count
                if count < min {
                    ok = false
                    break
                }
                if greedy {
                    if count > min {
                        stack.append(Frame(kind: .greedy, pc: pc + 1, position: current, a: count, b: min))
                    }
                } else if count < max {
                    stack.append(Frame(kind: .lazy, pc: pc + 1, position: current, a: count, b: max))
                }
                position = current
                pc += 1
            case .loopInit(let loop):
                let countRegister = registers.count - 2 * (loop + 1)
                setRegister(countRegister, 0)
                setRegister(countRegister + 1, -1)
                pc += 1
            case .loopCheck(let loop, let min, let max, let greedy, let exit):
                let count = registers[registers.count - 2 * (loop + 1)]
                if count < min {
                    pc += 1
                } else if count >= max {
                    pc = exit
                } else if greedy {
                    stack.append(Frame(kind: .branch, pc: exit, position: position, a: 0, b: 0))
                    pc += 1
                } else {
                    stack.append(Frame(kind: .branch, pc: pc + 1, position: position, a: 0, b: 0))
                    pc = exit
                }
            case .loopStart(let loop):
                setRegister(registers.count - 2 * (loop + 1) + 1, position)
                pc += 1
            case .loopEnd(let loop, let min, let check):
                let countRegister = registers.count - 2 * (loop + 1)
                let count = registers[countRegister]
                if count >= min && position == registers[countRegister + 1] {
                    ok = false  // an optional iteration that matched the empty string
                    break
                }
                setRegister(countRegister, count + 1)
                pc = check
            case .clearCaptures(let from, let to):
                for group in from..<to {
                    setRegister(2 * (group - 1), -1)
                    setRegister(2 * (group - 1) + 1, -1)
                }
                pc += 1
            case .match:
                return position
            }
        }
    }

    /// Pops frames down to `base`, undoing register changes.
    private mutating func unwind(to base: Int) {
        while stack.count > base {
            let frame = stack.removeLast()
            if frame.kind == .restore { registers[frame.a] = frame.b }
        }
    }
}
