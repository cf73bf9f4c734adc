/** scripts/layers.mjs: what each layer of src/ may import besides itself. */
export declare const MAY_IMPORT: Record<string, string[]>
