// The floor of `npm run bench`: a bare node:http server that reads each request's body and answers it with
// the bytes Bastion answered the same request with (captured by run.mjs), one answer per protocol revision.
// Nothing is parsed, checked or read from disk: what separates Bastion from this is Bastion's own work.
//
//   node bench/reference-raw.mjs <port> <answers.json>
//   answers.json: { "<revision>": { "contentType": "...", "body": "..." }, ... }
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const [port, answersFile] = process.argv.slice(2);
const answers = Object.fromEntries(
  Object.entries(JSON.parse(readFileSync(answersFile, 'utf8'))).map(([revision, answer]) => {
    const body = Buffer.from(answer.body);
    return [
      revision,
      { body, headers: { 'content-type': answer.contentType, 'content-length': body.length } },
    ];
  }),
);
const fallback = Object.values(answers)[0];

http
  .createServer((req, res) => {
    req.on('data', () => undefined);
    req.on('end', () => {
      const answer = answers[req.headers['mcp-protocol-version']] ?? fallback;
      res.writeHead(200, answer.headers);
      res.end(answer.body);
    });
  })
  .listen(Number(port), '127.0.0.1', () => {
    process.stderr.write(`serving MCP at http://127.0.0.1:${port}/mcp\n`);
  });
