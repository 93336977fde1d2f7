// Python (pydantic) models from an AsyncAPI document, by AsyncAPI's Modelina, as an
// integrator would make them. Usage: node generate.cjs <modelina dir> <asyncapi.yaml> <out>
// (<modelina dir> holds node_modules/@asyncapi/modelina: tests/contracts/modelina.py).
const { createRequire } = require('node:module');
const { readFileSync } = require('node:fs');
const path = require('node:path');

const [dir, input, out] = process.argv.slice(2);
const { PythonFileGenerator, PYTHON_PYDANTIC_PRESET } = createRequire(
  path.join(path.resolve(dir), 'package.json')
)('@asyncapi/modelina');

new PythonFileGenerator({ presets: [PYTHON_PYDANTIC_PRESET] })
  .generateToFiles(readFileSync(input, 'utf8'), out, {})
  .then((models) => console.log(`${models.length} models`))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
