import type {HookConfig} from '../config/types.js'

/**
 * MHA's warnings at monitor start ("shutdown_script is not defined", "master_ip_failover_script is not
 * defined"), with what each missing hook means after a failover. Pure: the cluster file only.
 */
export function missingHookWarnings(hooks: HookConfig, proxies = 0): {code: string; message: string}[] {
  const warnings: {code: string; message: string}[] = []
  if (!hooks.shutdown)
    warnings.push({
      code: 'no_shutdown_hook',
      message:
        'hooks.shutdown is not set: a dead master is fenced only if it still answers SQL (read_only, client connections killed); one that comes back later may keep taking writes until mha watch fences it. Set hooks.shutdown (MHA: shutdown_script) to power it off or kill its mysqld',
    })
  // The routing section's proxies are moved by the plan's own steps: the hook is then for a virtual IP or DNS only.
  if (!hooks.masterIpFailover && proxies === 0)
    warnings.push({
      code: 'no_master_ip_failover_hook',
      message:
        "hooks.master_ip_failover is not set: after a failover nothing redirects the application (virtual IP, DNS, proxy) to the new master. Set hooks.master_ip_failover (MHA: master_ip_failover_script)",
    })
  return warnings
}
