#!/usr/bin/env node
import {phase} from '../dist/src/util/phases.js'

phase('node ready')
const {runMain} = await import('../dist/src/cli/main.js')
await runMain(import.meta.url)
