// Writes .br and .gz beside every text asset of dist/, so hqd serves them
// precompressed (Content-Encoding by the client's Accept-Encoding).
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const root = new URL("./dist/", import.meta.url).pathname;
const text = /\.(js|css|html|svg|webmanifest|json|txt)$/;
function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (text.test(e.name)) {
      const data = fs.readFileSync(p);
      fs.writeFileSync(p + ".br", zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }));
      fs.writeFileSync(p + ".gz", zlib.gzipSync(data, { level: 9 }));
    }
  }
}
walk(root);
