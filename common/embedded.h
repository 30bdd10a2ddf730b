/*
 * Files compiled into a binary by cmake/embed.cmake (SQL migrations). The generated
 * table ends with { NULL, NULL } and is sorted by name.
 */
#ifndef VAP_EMBEDDED_H
#define VAP_EMBEDDED_H

struct vap_embedded_file {
    const char *name;
    const char *text;
};

#endif
