-- SPDX-License-Identifier: Apache-2.0
-- wrk script: each thread sends its own share of the pre-signed paths in PATHS_FILE (one per line), each path
-- once, so every request carries a fresh nonce. Method from METHOD (GET or POST, parameters in the query).
local threads = {}
local counter = 0

function setup(thread)
    thread:set("index", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

function init(args)
    local count = 0
    for _ in pairs(threads) do count = count + 1 end
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
