#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx); `npm run build` is not needed in development.
import {execute, settings} from '@oclif/core'

settings.enableAutoTranspile = true
await execute({dir: import.meta.url})
