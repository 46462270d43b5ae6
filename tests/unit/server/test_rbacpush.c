/*
 * Tests of server/rbacpush.c's request document: drover roles become
 * Kubernetes ClusterRoles for users named drover:<username>.
 */
#include <check.h>
#include <stdlib.h>

#include "server/rbacpush.h"
#include "server/store.h"

START_TEST(document)
{
    const struct rbacpush_grant g[] = {
        { "admin", STORE_ROLE_OWNER }, { "alice", STORE_ROLE_MEMBER },
        { "bob", STORE_ROLE_VIEWER }, { "nobody", STORE_ROLE_NONE },
    };
    char *s = rbacpush_document(g, 4);
    ck_assert_str_eq(s, "{\"bindings\":[{\"user\":\"drover:admin\",\"role\":\"cluster-admin\"},"
                        "{\"user\":\"drover:alice\",\"role\":\"edit\"},"
                        "{\"user\":\"drover:bob\",\"role\":\"view\"}]}");
    free(s);
    s = rbacpush_document(NULL, 0);
    ck_assert_str_eq(s, "{\"bindings\":[]}");
    free(s);
}
END_TEST

Suite *suite_server_rbacpush(void)
{
    Suite *s = suite_create("server/rbacpush");
    TCase *tc = tcase_create("rbacpush");
    tcase_add_test(tc, document);
    suite_add_tcase(s, tc);
    return s;
}
