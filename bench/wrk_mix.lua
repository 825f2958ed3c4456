-- wrk script for bench/wrk_mix.py: a weighted mix of the public GET routes and
-- generate (admin token, a one-item template), each connection cycling through
-- the same shuffled list. Ids and the token come from the environment.
local token = os.getenv("SF_TOKEN")
local tpl = os.getenv("SF_TEMPLATE")
local run = os.getenv("SF_RUN")
local image = os.getenv("SF_IMAGE")
local album = os.getenv("SF_ALBUM")

local mix = {
  {10, "GET", "/api/health"},
  {14, "GET", "/api/batch-templates"},
  {14, "GET", "/api/batch-templates/1"},
  {12, "GET", "/api/images?limit=20"},
  {10, "GET", "/api/images/" .. image},
  {10, "GET", "/api/albums"},
  {6, "GET", "/api/albums/" .. album},
  {6, "GET", "/api/runs"},
  {6, "GET", "/api/runs/" .. run},
  {6, "GET", "/api/runs/" .. run .. "/items"},
  {1, "GET", "/metrics"},
  {2, "POST", "/api/batch-templates/" .. tpl .. "/generate"},
}

local reqs = {}
local body = '{"album_name": "wrk", "user_theme": "load"}'
local no_generate = os.getenv("SF_WRK_NO_GENERATE") == "1"
for _, m in ipairs(mix) do
  for _ = 1, (no_generate and m[2] == "POST") and 0 or m[1] do
    if m[2] == "POST" then
      reqs[#reqs + 1] = wrk.format("POST", m[3], {["Content-Type"] = "application/json",
                                                   ["Authorization"] = "Bearer " .. token}, body)
    else
      reqs[#reqs + 1] = wrk.format("GET", m[3])
    end
  end
end

local i = 0
function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  for k = #reqs, 2, -1 do
    local j = math.random(k)
    reqs[k], reqs[j] = reqs[j], reqs[k]
  end
  i = math.random(#reqs) - 1
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end
