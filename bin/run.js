#!/usr/bin/env node
import {enableCodeCache} from '../dist/src/util/code-cache.js'
import {phase} from '../dist/src/util/phases.js'

phase('node ready')
enableCodeCache()
const {runMain} = await import('../dist/src/cli/main.js')
await runMain(import.meta.url)
