/*
 * cmds: the command implementations, one group per file (cmd_auth.c,
 * cmd_cluster.c, cmd_snapshot.c, cmd_access.c, cmd_apply.c). The table
 * that names them with their flags is cli/commands.c.
 */
#ifndef DROVER_CLI_CMDS_H
#define DROVER_CLI_CMDS_H

struct ctl;
struct args;

#define CMD(name) int cmd_##name(struct ctl *ctl, const struct args *a)
CMD(login); CMD(logout); CMD(whoami);
CMD(cluster_create); CMD(cluster_list); CMD(cluster_get); CMD(cluster_delete);
CMD(cluster_import); CMD(cluster_kubeconfig); CMD(node_list);
CMD(snapshot_create); CMD(snapshot_list); CMD(snapshot_download);
CMD(snapshot_restore); CMD(snapshot_delete); CMD(snapshot_schedule);
CMD(member_add); CMD(member_list); CMD(member_remove);
CMD(user_add); CMD(user_list); CMD(user_remove);
CMD(apply); CMD(upgrade); CMD(completion);
#undef CMD

#endif
