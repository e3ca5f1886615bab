//! The Lua scripts, run with EVALSHA (EVAL's script loaded once by `redis::Script` on
//! NOSCRIPT). Numbers go through `%.0f` so that seqs past 10^14 are not written in
//! exponent form (Lua 5.1 numbers are doubles: exact up to 2^53).

/// Get-or-create a room's meta hash. A room Redis has no state for (fresh, or lost)
/// takes the candidate epoch and starts after max(floor, the seq of the stream's newest
/// entry if the stream survived), so a seq is never given twice within one stream.
macro_rules! meta_fn {
    () => {
        r#"
local function meta_of(meta, log, candidate, floor)
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch then
    return epoch
  end
  local start = tonumber(floor) or 0
  local top = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)
  if top[1] then
    local s = tonumber(string.match(top[1][1], '^(%d+)'))
    if s and s > start then
      start = s
    end
  end
  redis.call('HSET', meta, 'epoch', candidate, 'seq', string.format('%.0f', start))
  return candidate
end

-- The entries of an XRANGE / XREVRANGE answer that belong to `epoch`, flattened into
-- `out` as id, line, id, line, …
local function push_entries(out, entries, epoch)
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    local e, m
    for i = 1, #fields, 2 do
      if fields[i] == 'e' then
        e = fields[i + 1]
      elseif fields[i] == 'm' then
        m = fields[i + 1]
      end
    end
    if e == epoch and m then
      out[#out + 1] = entry[1]
      out[#out + 1] = m
    end
  end
end
"#
    };
}

/// Sequences a batch: many messages of many rooms in one call.
///
/// KEYS = meta_1, log_1, meta_2, log_2, … (one pair per room);
/// ARGV = stream_len, then per room: channel, candidate_epoch, floor, n, line_1 … line_n.
/// Per room: get-or-create the meta, `HINCRBY seq n`, XADD each line as `{seq}-0` with
/// fields `e` (epoch) and `m` (the line), `MAXLEN ~ stream_len`, and ONE PUBLISH of
/// `epoch\nfirst\nline_1\n…\nline_n`. Returns per room `{epoch, first}`.
pub(crate) const SEQUENCE: &str = concat!(
    meta_fn!(),
    r#"
local maxlen = ARGV[1]
local out = {}
local a = 2
for r = 1, #KEYS, 2 do
  local meta, log = KEYS[r], KEYS[r + 1]
  local channel, candidate, floor = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local n = tonumber(ARGV[a + 3])
  a = a + 4
  local epoch = meta_of(meta, log, candidate, floor)
  local last = redis.call('HINCRBY', meta, 'seq', n)
  local first = last - n + 1
  local lines = {}
  for j = 0, n - 1 do
    local line = ARGV[a + j]
    redis.call('XADD', log, 'MAXLEN', '~', maxlen, string.format('%.0f', first + j) .. '-0',
      'e', epoch, 'm', line)
    lines[j + 1] = line
  end
  a = a + n
  redis.call('PUBLISH', channel,
    epoch .. '\n' .. string.format('%.0f', first) .. '\n' .. table.concat(lines, '\n'))
  out[#out + 1] = {epoch, first}
end
return out
"#
);

/// Loads a room: KEYS = meta, log; ARGV = candidate_epoch, floor, recent.
/// Get-or-create the meta; returns `{epoch, seq, id_1, line_1, …}` with the newest
/// `recent` entries of the current epoch, newest first.
pub(crate) const LOAD: &str = concat!(
    meta_fn!(),
    r#"
local epoch = meta_of(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
local seq = redis.call('HGET', KEYS[1], 'seq')
local out = {epoch, seq}
local recent = tonumber(ARGV[3]) or 0
if recent > 0 then
  push_entries(out, redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', recent), epoch)
end
return out
"#
);

/// Fetches a range: KEYS = meta, log; ARGV = start id, end id (or `+`), count.
/// Returns `{}` when Redis has no state for the room, else `{epoch, id_1, line_1, …}`
/// (the current epoch's entries only, oldest first). Creates nothing.
pub(crate) const FETCH: &str = concat!(
    meta_fn!(),
    r#"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  return {}
end
local out = {epoch}
push_entries(out, redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[2], 'COUNT', ARGV[3]), epoch)
return out
"#
);
