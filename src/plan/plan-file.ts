import {createHash} from 'node:crypto'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {formatPath, problemsOf, schemasDir, validator} from '../schema/validator.js'
import {UserError} from '../util/errors.js'
import type {Plan} from './types.js'

export function toolVersion(): string {
  const pkg = JSON.parse(readFileSync(join(dirname(schemasDir()), 'package.json'), 'utf8')) as {version: string}
  return `mha ${pkg.version}`
}

/** plans/<cluster>/<UTC timestamp>-<kind>.json */
export function defaultPlanPath(plan: Plan, plansDir = 'plans'): string {
  const stamp = plan.header.createdAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  return join(plansDir, plan.cluster, `${stamp}-${plan.kind}.json`)
}

/** The compared part of a plan: everything but the header. */
export function planBody(plan: Plan): Omit<Plan, 'header'> {
  const {header: _header, ...body} = plan
  return body
}

/** Keys sorted at every level: the same plan gives the same text however its file was laid out. */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k])]))
  return value
}

/** What a reviewer approves: sha256 of the whole plan in canonical form (hex). Any change to any field changes it. */
export function planDigest(plan: Plan): string {
  return createHash('sha256').update(JSON.stringify(canonical(plan))).digest('hex')
}

export function serializePlan(plan: Plan): string {
  return JSON.stringify(plan, null, 2) + '\n'
}

export function validatePlan(plan: unknown, file: string): asserts plan is Plan {
  const validate = validator('plan.schema.json')
  if (!validate(plan)) {
    const problems = problemsOf(validate.errors)
    throw new UserError(`${file}: not a valid mha plan: ${problems.map((p) => `${formatPath(p.path)} ${p.message}`).join('; ')}; make a new one with "mha plan"`, 'plan')
  }
}

export function writePlan(plan: Plan, file: string): void {
  validatePlan(plan, file)
  mkdirSync(dirname(file), {recursive: true})
  writeFileSync(file, serializePlan(plan))
}

export function readPlan(file: string): Plan {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    throw new UserError(`${file}: cannot read the plan file`, 'plan')
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    throw new UserError(`${file}: not JSON (${error instanceof Error ? error.message : String(error)}); make a new plan with "mha plan"`, 'plan')
  }
  validatePlan(data, file)
  return data
}
