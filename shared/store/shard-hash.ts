/** Which of `shards` key values a text goes to: a cheap, stable string hash (not for security). */
export function shardOf(text: string, shards: number): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) >>> 0;
  return hash % shards;
}
