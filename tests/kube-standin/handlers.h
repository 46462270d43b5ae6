/*
 * handlers: helpers the REST verb handlers of the kube-standin test stand-in
 * share (handlers.c reads, handlers_write.c writes, watch.c streams).
 */
#ifndef KUBE_STANDIN_HANDLERS_H
#define KUBE_STANDIN_HANDLERS_H

#include <jansson.h>

struct kreq;
struct ksel;

/* autoscaling/v1 Scale of a Deployment (new reference). */
json_t *scale_of(const json_t *deployment);
/* Answers obj (borrowed), as a Table when the client asked for one. */
void reply_object(struct kreq *k, int status, const json_t *obj);
/* Parses labelSelector and fieldSelector; NULL after answering 400. */
struct ksel *parse_selectors(struct kreq *k, struct ksel **fields);
/* Objects of the request's resource and namespace matching both (new array). */
json_t *matching(struct kreq *k, const struct ksel *labels, const struct ksel *fields);

#endif
