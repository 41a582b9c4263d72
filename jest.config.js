/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  // The Functions host injects @azure/functions-core; tests get the recording stand-in instead.
  moduleNameMapper: { '^@azure/functions-core$': '<rootDir>/cli/host/functionsCore.ts' },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 60000,
};
