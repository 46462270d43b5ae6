/*
 * commands: droverctl's command table: every noun and verb with its
 * arguments, flags and one-line summary. Help, parsing and completion are
 * all driven from here (cli/args.c), so they cannot disagree.
 */
#include "cli/args.h"
#include "cli/cmds.h"

static const struct flagspec login_flags[] = {
    { "username", 'u', true, "the drover user to log in as (required)" },
    { "password-stdin", 0, false, "read the password from standard input" },
    { "ca-checksum", 0, true, "SHA-256 of the server's CA (/cacerts) to pin" },
    { "insecure", 0, false, "do not check the server's certificate (warns)" },
    { 0 },
};
static const struct flagspec create_flags[] = {
    { "snapshot-interval", 0, true, "minutes between etcd snapshots (0: none)" },
    { "snapshot-retention", 0, true, "how many scheduled snapshots to keep" },
    { 0 },
};
static const struct flagspec import_flags[] = {
    { "insecure", 0, false, "the command that skips TLS checks (server's own CA)" },
    { 0 },
};
static const struct flagspec kubeconfig_flags[] = {
    { "print", 0, false, "print it instead of merging it into your kubeconfig" },
    { 0 },
};
static const struct flagspec snap_create_flags[] = {
    { "node", 0, true, "the etcd node to take it on (default: the server picks)" },
    { "no-wait", 0, false, "return at once instead of waiting until it is done" },
    { "timeout", 0, true, "seconds to wait at most (default: no limit)" },
    { 0 },
};
static const struct flagspec snap_restore_flags[] = {
    { "no-wait", 0, false, "return at once instead of waiting until it is done" },
    { "timeout", 0, true, "seconds to wait at most (default: no limit)" },
    { 0 },
};
static const struct flagspec snap_download_flags[] = {
    { "file", 'f', true, "where to write it (default SNAPSHOT.db)" },
    { 0 },
};
static const struct flagspec schedule_flags[] = {
    { "interval", 0, true, "minutes between snapshots (0 turns them off)" },
    { "retention", 0, true, "how many scheduled snapshots to keep" },
    { 0 },
};
static const struct flagspec member_flags[] = {
    { "role", 'r', true, "owner, member (default) or viewer" },
    { 0 },
};
static const struct flagspec user_flags[] = {
    { "admin", 0, false, "make the user an administrator" },
    { "password-stdin", 0, false, "read the password from standard input" },
    { 0 },
};
static const struct flagspec apply_flags[] = {
    { "file", 'f', true, "YAML or JSON objects to apply (\"-\": standard input)" },
    { 0 },
};
static const struct flagspec upgrade_flags[] = {
    { "version", 0, true, "the Kubernetes version to upgrade to (required)" },
    { "concurrency", 0, true, "nodes upgraded at once (default 1)" },
    { "no-wait", 0, false, "return at once instead of waiting until it is done" },
    { "timeout", 0, true, "seconds to wait at most (default: no limit)" },
    { 0 },
};

const struct cmdspec ctl_commands[] = {
    { "login", NULL, "SERVER-URL", 1, 1, login_flags,
      "log in to a drover server and store the token", cmd_login },
    { "logout", NULL, "", 0, 0, NULL, "end the session and forget the token", cmd_logout },
    { "whoami", NULL, "", 0, 0, NULL, "show the logged-in user and server", cmd_whoami },
    { "cluster", "create", "NAME", 1, 1, create_flags, "register a new cluster",
      cmd_cluster_create },
    { "cluster", "list", "", 0, 0, NULL, "list the clusters you can see", cmd_cluster_list },
    { "cluster", "get", "CLUSTER", 1, 1, NULL, "show one cluster (by id or name)",
      cmd_cluster_get },
    { "cluster", "delete", "CLUSTER", 1, 1, NULL, "delete a cluster", cmd_cluster_delete },
    { "cluster", "import-command", "CLUSTER", 1, 1, import_flags,
      "print the kubectl command that installs the agents", cmd_cluster_import },
    { "cluster", "kubeconfig", "CLUSTER", 1, 1, kubeconfig_flags,
      "merge the cluster's kubeconfig into yours (KUBECONFIG or ~/.kube/config)",
      cmd_cluster_kubeconfig },
    { "node", "list", "CLUSTER", 1, 1, NULL, "list a cluster's nodes", cmd_node_list },
    { "snapshot", "create", "CLUSTER", 1, 1, snap_create_flags,
      "take an etcd snapshot and wait for it", cmd_snapshot_create },
    { "snapshot", "list", "CLUSTER", 1, 1, NULL, "list a cluster's etcd snapshots",
      cmd_snapshot_list },
    { "snapshot", "download", "CLUSTER SNAPSHOT", 2, 2, snap_download_flags,
      "download a snapshot and check its SHA-256", cmd_snapshot_download },
    { "snapshot", "restore", "CLUSTER SNAPSHOT", 2, 2, snap_restore_flags,
      "restore a cluster's etcd from a snapshot and wait for it", cmd_snapshot_restore },
    { "snapshot", "delete", "CLUSTER SNAPSHOT", 2, 2, NULL, "delete a snapshot",
      cmd_snapshot_delete },
    { "snapshot", "schedule", "CLUSTER", 1, 1, schedule_flags,
      "show or set the cluster's snapshot schedule", cmd_snapshot_schedule },
    { "member", "add", "CLUSTER USER", 2, 2, member_flags,
      "give a user a role on a cluster", cmd_member_add },
    { "member", "list", "CLUSTER", 1, 1, NULL, "list a cluster's members", cmd_member_list },
    { "member", "remove", "CLUSTER USER", 2, 2, NULL, "take a user's role away",
      cmd_member_remove },
    { "user", "add", "USERNAME", 1, 1, user_flags, "create a user (admins only)",
      cmd_user_add },
    { "user", "list", "", 0, 0, NULL, "list users (admins only)", cmd_user_list },
    { "user", "remove", "USERNAME", 1, 1, NULL, "delete a user (admins only)",
      cmd_user_remove },
    { "apply", NULL, "CLUSTER", 1, 1, apply_flags,
      "apply YAML or JSON objects to a cluster through its agent", cmd_apply },
    { "upgrade", NULL, "CLUSTER", 1, 1, upgrade_flags,
      "upgrade a cluster's Kubernetes and wait for it", cmd_upgrade },
    { "completion", NULL, "SHELL", 1, 1, NULL, "print a shell completion script (bash)",
      cmd_completion },
    { 0 },
};
