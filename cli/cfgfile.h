/*
 * cfgfile: droverctl's login state, ~/.config/drover/config.yaml (or the
 * path in DROVER_CONFIG): the server URL, the user, the token and how the
 * server is trusted (its CA, pinned by checksum, or insecure). The file
 * holds a bearer token, so it is written 0600 (its directory 0700) through
 * a temporary file and a rename, and read only if no one else may read it.
 */
#ifndef DROVER_CLI_CFGFILE_H
#define DROVER_CLI_CFGFILE_H

#include <stdbool.h>
#include <stddef.h>

struct ctl_config {
    char *server;           /* https://host:port */
    char *username;
    char *token;
    char *ca_checksum;      /* hex SHA-256 of ca_cert; NULL with insecure or system trust */
    char *ca_cert;          /* the pinned CA PEM */
    bool insecure;
};

/* The file's path into buf: DROVER_CONFIG, else $HOME/.config/drover/config.yaml.
 * 0, or -1 with err if neither is set. */
int cfgfile_path(char *buf, size_t cap, char *err, size_t errlen);

/* Loads path into c (zeroed first). Returns 0, 1 if the file does not exist
 * (c stays empty), -1 with err if it cannot be read or parsed, or if its
 * permissions let group or others read it. */
int cfgfile_load(const char *path, struct ctl_config *c, char *err, size_t errlen);

/* Writes c to path with mode 0600, creating its directory (0700). 0 or -1. */
int cfgfile_save(const char *path, const struct ctl_config *c, char *err, size_t errlen);

void cfgfile_free(struct ctl_config *c);

#endif
