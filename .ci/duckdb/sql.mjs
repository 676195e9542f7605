// Runs SQL with DuckDB for the README-example test
// (cmd/evindex/readme_test.go): it reads a JSON array of statements on
// stdin, runs them in order on one in-memory database, in the working
// directory (so file names in the SQL are the exports'), and prints a JSON
// array with each statement's rows, as objects from column name to value.
// DECIMAL, HUGEINT and times come out as the strings DuckDB prints, so
// nothing passes through a float.
import { DuckDBInstance } from '@duckdb/node-api';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const statements = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const results = [];
for (const [i, sql] of statements.entries()) {
  try {
    const reader = await con.runAndReadAll(sql);
    results.push(reader.getRowObjectsJson());
  } catch (e) {
    process.stderr.write(`statement ${i + 1}: ${e.message}\n${sql}\n`);
    process.exit(1);
  }
}
process.stdout.write(JSON.stringify(results) + '\n');
