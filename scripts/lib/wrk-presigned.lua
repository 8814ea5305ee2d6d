-- SPDX-License-Identifier: Apache-2.0
-- wrk script: each thread sends its own share of the pre-signed paths in PATHS_FILE (one per line), each path
-- once, so every request carries a fresh nonce. THREADS must equal wrk's -t; METHOD is GET or POST (the
-- parameters stay in the query either way).
local counter = 0

function setup(thread)
    thread:set("index", counter)
    counter = counter + 1
end

function init(args)
    paths = {}
    local file = assert(io.open(os.getenv("PATHS_FILE"), "r"))
    local line_number = 0
    local share = tonumber(os.getenv("THREADS"))
    for line in file:lines() do
        if line_number % share == index then paths[#paths + 1] = line end
        line_number = line_number + 1
    end
    file:close()
    method = os.getenv("METHOD") or "GET"
    next_path = 1
end

function request()
    local path = paths[next_path]
    next_path = next_path + 1
    if next_path > #paths then next_path = 1 end  -- wrapped: later requests reuse nonces (SignatureNonceUsed)
    return wrk.format(method, path)
end
