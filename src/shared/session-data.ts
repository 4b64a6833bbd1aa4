/**
 * The session's data in Redis: one field `d` of the session hash holding every key the apps set,
 * one entry per line, each `<key as JSON>:<value as JSON>` (JSON.stringify never writes a raw
 * newline, so a line is one entry). One field, so a page view reads the session with one HMGET of a
 * fixed set of fields, however many keys and apps the session has (bench/README.md, issue 17).
 *
 * Apps write it through the SAVE script (sessions.ts), which replaces a key's line by its prefix,
 * `<key as JSON>:`: a JSON string token ends at its first unescaped quote, so that prefix matches
 * the lines of that key and of no other. Sessions an earlier Tessera created have no `d` field and
 * keep one `d:<key>` field per key (LEGACY_DATA_PREFIX), which SAVE then goes on writing.
 */
export const DATA_FIELD = 'd'

/** Where an earlier Tessera kept each key: its own field, `d:<key>`. */
export const LEGACY_DATA_PREFIX = 'd:'

/** A key's line starts with this, and no other key's does. */
export function dataEntryPrefix(key: string): string {
  return `${JSON.stringify(key)}:`
}

/**
 * The data in a `d` field, as a Map (`__proto__` and `constructor` are keys like any other).
 * @throws SyntaxError when the field is not what SAVE writes (a corrupt record).
 */
export function parseData(field: string): Map<string, unknown> {
  const data = new Map<string, unknown>()
  if (field === '') return data
  // The lines are the members of one JSON object: one native parse, whatever the number of keys.
  const all = JSON.parse(`{${field.replaceAll('\n', ',')}}`) as Record<string, unknown>
  for (const key of Object.keys(all)) data.set(key, all[key])
  return data
}

/**
 * Lua: `merge_data(blob, changes, first)` applies the (raw key, prefix, JSON or '' = delete) triples
 * of `changes` from index `first` to a `d` field and returns the new one.
 */
export const LUA_MERGE_DATA = `local function merge_data(blob, changes, first)
  local entries = {}
  for e in string.gmatch(blob, '[^\\n]+') do entries[#entries + 1] = e end
  for i = first, #changes, 3 do
    local prefix = changes[i + 1]
    for j = #entries, 1, -1 do
      if string.sub(entries[j], 1, #prefix) == prefix then table.remove(entries, j) end
    end
    if changes[i + 2] ~= '' then entries[#entries + 1] = prefix .. changes[i + 2] end
  end
  return table.concat(entries, '\\n')
end`
