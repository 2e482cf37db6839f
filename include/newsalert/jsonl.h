/* Articles written as JSON (one object per line): the readable source of
 * packed feeds and of the labelled corpus. */
#ifndef NEWSALERT_JSONL_H
#define NEWSALERT_JSONL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/error.h"

/* Encodes obj's Article fields (by their proto names) as protobuf bytes in
 * *buf (malloc'd; the caller frees). Unknown keys starting with "_" or named
 * "labels", "split" or "style" are ignored; other unknown keys and wrong
 * types are errors. */
int na_jsonl_article_pack(json_t *obj, uint8_t **buf, size_t *len, struct na_error *err);

#endif
