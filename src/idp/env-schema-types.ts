/**
 * The few JSON Schema builders the environment schema needs (config-schema.ts), each carrying the
 * TypeScript type of its value, so `Env` still follows from the schema alone. They replace
 * TypeBox, whose module graph added about 8 MB to the IdP's resident memory for these five
 * shapes (bench/README.md, issue 17). The output is plain JSON Schema for env-schema (ajv).
 */
declare const VALUE: unique symbol
declare const OPTIONAL: unique symbol

/** A JSON Schema whose value has type `T`; `Opt` when the variable may be left unset with no default. */
export type Schema<T, Opt extends boolean = false> = Readonly<Record<string, unknown>> & { readonly [VALUE]?: T; readonly [OPTIONAL]?: Opt }

const optionalMark = new WeakSet<object>()

export const integer = (def: number, minimum: number, maximum: number): Schema<number> => ({ type: 'integer', default: def, minimum, maximum })
export const text = (def: string): Schema<string> => ({ type: 'string', default: def })
export const string = (extra: { readonly default?: string; readonly minLength?: number } = {}): Schema<string> => ({ type: 'string', ...extra })
export const oneOf = <const V extends readonly string[]>(values: V, def: V[number]): Schema<V[number]> => ({ type: 'string', enum: values, default: def })
export function optional<T>(schema: Schema<T>): Schema<T, true> {
  optionalMark.add(schema)
  return schema as Schema<T, true>
}

type Props = Readonly<Record<string, Schema<unknown, boolean>>>
type ValueOf<S> = S extends Schema<infer T, boolean> ? T : never
type IsOptional<S> = S extends { readonly [OPTIONAL]?: infer O } ? (true extends O ? (false extends O ? false : true) : false) : false

/** The type of an object the schema accepts: optional properties may be missing, the rest are there (defaults fill them). */
export type Static<S> = S extends { readonly properties: infer P extends Props }
  ? { -readonly [K in keyof P as IsOptional<P[K]> extends true ? never : K]: ValueOf<P[K]> } &
    { -readonly [K in keyof P as IsOptional<P[K]> extends true ? K : never]?: ValueOf<P[K]> }
  : never

/** An object schema: every property not marked `optional` is required (a default satisfies it). */
export function envObject<P extends Props>(properties: P): { readonly type: 'object'; readonly properties: P; readonly required: readonly string[] } {
  return { type: 'object', properties, required: Object.keys(properties).filter((name) => !optionalMark.has(properties[name] as object)) }
}
