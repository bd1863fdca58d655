package main

import (
	"context"
	"errors"
)

func cmdAdm(ctx context.Context, e *env, args []string) error    { return errors.New("not built yet") }
func cmdUpload(ctx context.Context, e *env, args []string) error { return errors.New("not built yet") }
func cmdFetch(ctx context.Context, e *env, args []string) error  { return errors.New("not built yet") }
func cmdInfo(ctx context.Context, e *env, args []string) error   { return errors.New("not built yet") }
func cmdLs(ctx context.Context, e *env, args []string) error     { return errors.New("not built yet") }
func cmdRm(ctx context.Context, e *env, args []string) error     { return errors.New("not built yet") }
