package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/tracker/client"
)

// admTimeout is the tracker timeout of adm: admin mutations wait for a monitor round (mogadm uses 15s).
const admTimeout = 15 * time.Second

// admin is the state shared by the adm subcommands.
type admin struct {
	e       *env
	cf      clientFlags
	verbose bool
	p       *client.Pool
}

// admLeaf is one "adm TOPIC VERB" command.
type admLeaf struct {
	verb string
	help cliHelp
	// flags registers the leaf's own flags and returns the function that runs it.
	flags func(fs *flag.FlagSet) func(ctx context.Context, a *admin, pos []string) error
	args  []string // names of the positional arguments
}

// admTopic is a group of leaves ("host", "device"), or a leaf itself when verbs is nil ("check").
type admTopic struct {
	name  string
	about string
	verbs []admLeaf
	leaf  *admLeaf
}

func admTopics() []admTopic {
	return []admTopic{
		{name: "check", about: "check trackers, hosts and devices", leaf: &checkLeaf},
		{name: "host", about: "add, modify, mark, delete and list hosts", verbs: hostLeaves()},
		{name: "device", about: "add, mark, modify and list devices", verbs: deviceLeaves()},
		{name: "domain", about: "add, delete and list domains", verbs: domainLeaves()},
		{name: "class", about: "add, modify, delete and list classes", verbs: classLeaves()},
		{name: "settings", about: "list and set server settings", verbs: settingsLeaves()},
		{name: "fsck", about: "control the background file system check", verbs: fsckLeaves()},
		{name: "stats", about: "print each tracker's counters and replication state (!stats)", leaf: &statsLeaf},
	}
}

var admHelp = cliHelp{
	name:     "adm",
	synopsis: "[--trackers=H:P,...] TOPIC VERB [ARGS] [--flags]",
	about: `Administer a cluster through its trackers, like mogadm. Flags may come before or after the
topic and verb. Commands that change something print nothing unless --verbose is given.`,
	examples: []string{
		"mogway adm --trackers=10.0.0.1:7001 check",
		"mogway adm host add storage1 --ip=10.0.0.11 --port=7500 --status=alive",
		"mogway adm device add storage1 1",
		"mogway adm domain add photos",
		"mogway adm class add photos thumbs --mindevcount=2",
	},
}

func printAdmTopics(w io.Writer) {
	fmt.Fprintf(w, "\nTopics and verbs:\n")
	for _, t := range admTopics() {
		if t.leaf != nil {
			fmt.Fprintf(w, "  %-34s %s\n", t.name, t.about)
			continue
		}
		for _, l := range t.verbs {
			fmt.Fprintf(w, "  %-34s %s\n", t.name+" "+l.verb+" "+shortSynopsis(l.help.synopsis), firstLine(l.help.about))
		}
	}
}

// shortSynopsis keeps the positional arguments of a synopsis and folds its flags into "[flags]".
func shortSynopsis(s string) string {
	var out []string
	flags := false
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "<") {
			out = append(out, f)
		} else {
			flags = true
		}
	}
	if flags {
		out = append(out, "[flags]")
	}
	return strings.Join(out, " ")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, ".\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func cmdAdm(ctx context.Context, e *env, args []string) error {
	a := &admin{e: e}
	fs := newCLIFlags(admHelp)
	a.register(fs)
	// Parse only up to the topic; the leaf parses the rest, its own flags and these again.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(e.stdout, fs, admHelp)
			printAdmTopics(e.stdout)
			return flag.ErrHelp
		}
		fmt.Fprintf(e.stderr, "mogway adm: %v\n\n", err)
		printHelp(e.stderr, fs, admHelp)
		return errUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		printHelp(e.stderr, fs, admHelp)
		printAdmTopics(e.stderr)
		return errUsage
	}
	for _, t := range admTopics() {
		if t.name != rest[0] {
			continue
		}
		if t.leaf != nil {
			return a.runLeaf(ctx, *t.leaf, rest[1:])
		}
		if len(rest) < 2 || isHelpFlag(rest[1]) {
			w, err := e.stderr, error(errUsage)
			if len(rest) >= 2 {
				w, err = e.stdout, flag.ErrHelp
			}
			fmt.Fprintf(w, "Usage: mogway adm %s VERB ...\n\n%s.\n\nVerbs:\n", t.name, strings.ToUpper(t.about[:1])+t.about[1:])
			for _, l := range t.verbs {
				fmt.Fprintf(w, "  %-34s %s\n", l.verb+" "+shortSynopsis(l.help.synopsis), firstLine(l.help.about))
			}
			fmt.Fprintf(w, "\n`mogway adm %s VERB --help` shows a verb's flags.\n", t.name)
			return err
		}
		for _, l := range t.verbs {
			if l.verb == rest[1] {
				return a.runLeaf(ctx, l, rest[2:])
			}
		}
		fmt.Fprintf(e.stderr, "mogway adm %s: unknown verb %q\n", t.name, rest[1])
		return errUsage
	}
	fmt.Fprintf(e.stderr, "mogway adm: unknown topic %q\n", rest[0])
	printAdmTopics(e.stderr)
	return errUsage
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

func (a *admin) register(fs *flag.FlagSet) {
	a.cf.register(fs, admTimeout)
	fs.BoolVar(&a.verbose, "verbose", a.verbose, "print what was done")
}

// runLeaf parses a leaf's flags and positional arguments, connects and runs it.
func (a *admin) runLeaf(ctx context.Context, l admLeaf, args []string) error {
	fs := newCLIFlags(l.help)
	a.register(fs)
	run := l.flags(fs)
	pos, err := parseCLI(a.e, fs, l.help, args)
	if err != nil {
		return err
	}
	if err := wantArgs(a.e, fs, l.help, pos, l.args...); err != nil {
		return err
	}
	a.p, err = a.cf.pool()
	if err != nil {
		return err
	}
	defer a.p.Close()
	return run(ctx, a, pos)
}

// ok prints msg when --verbose is given, as mogadm does.
func (a *admin) ok(msg string) error {
	if a.verbose {
		fmt.Fprintln(a.e.stdout, msg)
	}
	return nil
}

func leaf(topic, verb, synopsis, about string, args []string, examples []string,
	flags func(fs *flag.FlagSet) func(ctx context.Context, a *admin, pos []string) error) admLeaf {
	return admLeaf{
		verb:  verb,
		help:  cliHelp{name: "adm " + topic + " " + verb, synopsis: synopsis, about: about, examples: examples},
		flags: flags, args: args,
	}
}

// noFlags adapts a run function for leaves without flags of their own.
func noFlags(run func(ctx context.Context, a *admin, pos []string) error) func(*flag.FlagSet) func(context.Context, *admin, []string) error {
	return func(*flag.FlagSet) func(context.Context, *admin, []string) error { return run }
}

// firstIPv4 returns the first IPv4 address of addrs, or "" when there is none. host add resolves a
// host name to IPv4 only, as mogadm does (gethostbyname): the host table keeps IPv4 text (hostip is
// VARCHAR(15) in the MogileFS schema), and a resolver that lists an IPv6 address first (::1 for
// localhost on many systems) would otherwise register that.
func firstIPv4(addrs []string) string {
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && ip.To4() != nil {
			return ip.To4().String()
		}
	}
	return ""
}

// parseDevID accepts "5" and "dev5", as mogadm does.
func parseDevID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(s, "dev"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("devid should be a positive number like 5 or dev5, not %q", s)
	}
	return id, nil
}

func hostLeaves() []admLeaf {
	hostFlags := func(fs *flag.FlagSet, h *client.HostSpec, create bool) {
		statusDoc := "one of alive, down, dead, readonly"
		if create {
			statusDoc += " (default down)"
		}
		fs.StringVar(&h.Status, "status", "", statusDoc)
		fs.StringVar(&h.IP, "ip", "", "IP address of the host (default: the hostname resolved to IPv4)")
		portDoc := "HTTP port of the storage node"
		if create {
			portDoc += " (default 7500)"
		}
		fs.IntVar(&h.Port, "port", 0, portDoc)
		fs.IntVar(&h.GetPort, "getport", 0, "alternate HTTP port serving read-only traffic")
		fs.StringVar(&h.AltIP, "altip", "", "alternate IP the host is reachable at")
		fs.StringVar(&h.AltMask, "altmask", "", "netmask of clients that should get the alternate IP")
	}
	return []admLeaf{
		leaf("host", "add", "<hostname> [--ip=IP] [--port=7500] [--status=down] [...]",
			"Add a host. Without --ip the hostname is resolved to its IPv4 address.", []string{"hostname"},
			[]string{"mogway adm host add storage1 --ip=10.0.0.11 --port=7500 --status=alive"},
			func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
				var h client.HostSpec
				hostFlags(fs, &h, true)
				return func(ctx context.Context, a *admin, pos []string) error {
					h.Name = pos[0]
					hosts, err := a.p.GetHosts(ctx)
					if err != nil {
						return trackerError("host add", err)
					}
					for _, x := range hosts {
						if x.Name == h.Name {
							return fmt.Errorf("host add: host %q already exists", h.Name)
						}
					}
					if h.IP == "" {
						ips, err := net.DefaultResolver.LookupHost(ctx, h.Name)
						if h.IP = firstIPv4(ips); h.IP == "" {
							why := fmt.Sprintf("resolves to %q", ips)
							if err != nil {
								why = err.Error()
							}
							return fmt.Errorf("host add: %q has no IPv4 address (%s); give one with --ip=", h.Name, why)
						}
					}
					if h.Port == 0 {
						h.Port = 7500
					}
					if h.Status == "" {
						h.Status = "down"
					}
					if _, err := a.p.CreateHost(ctx, h); err != nil {
						return trackerError("host add", err)
					}
					return a.ok("Host has been created.")
				}
			}),
		leaf("host", "modify", "<hostname> [--ip=IP] [--port=N] [--status=S] [...]",
			"Change a host's address, ports or status.", []string{"hostname"},
			[]string{"mogway adm host modify storage1 --port=7600"},
			func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
				var h client.HostSpec
				hostFlags(fs, &h, false)
				return func(ctx context.Context, a *admin, pos []string) error {
					h.Name = pos[0]
					if err := a.p.UpdateHost(ctx, h); err != nil {
						return trackerError("host modify", err)
					}
					return a.ok("Host has been modified.")
				}
			}),
		leaf("host", "mark", "<hostname> <status>",
			"Change a host's status (alive, down, dead, readonly).", []string{"hostname", "status"},
			[]string{"mogway adm host mark storage1 down"},
			noFlags(func(ctx context.Context, a *admin, pos []string) error {
				if err := a.p.UpdateHost(ctx, client.HostSpec{Name: pos[0], Status: pos[1]}); err != nil {
					return trackerError("host mark", err)
				}
				return a.ok("Host status updated.")
			})),
		leaf("host", "delete", "<hostname>", "Delete a host that has no devices.", []string{"hostname"},
			[]string{"mogway adm host delete storage1"},
			noFlags(func(ctx context.Context, a *admin, pos []string) error {
				if err := a.p.DeleteHost(ctx, pos[0]); err != nil {
					return trackerError("host delete", err)
				}
				return a.ok("Host has been deleted.")
			})),
		leaf("host", "list", "", "List hosts with their addresses and status.", nil,
			[]string{"mogway adm host list"},
			noFlags(func(ctx context.Context, a *admin, _ []string) error {
				hosts, err := a.p.GetHosts(ctx)
				if err != nil {
					return trackerError("host list", err)
				}
				printHostList(a.e.stdout, hosts)
				return nil
			})),
	}
}

// printHostList prints hosts in mogadm's "host list" layout, by hostid.
func printHostList(w io.Writer, hosts []client.Host) {
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
	for _, h := range hosts {
		fmt.Fprintf(w, "%s [%d]: %s\n", h.Name, h.ID, h.Status)
		fmt.Fprintf(w, "  %-10s%s\n", "IP:", net.JoinHostPort(h.IP, strconv.Itoa(h.HTTPPort)))
		if h.AltIP != "" {
			fmt.Fprintf(w, "  %-10s%s\n", "Alt IP:", h.AltIP)
		}
		if h.AltMask != "" {
			fmt.Fprintf(w, "  %-10s%s\n", "Alt Mask:", h.AltMask)
		}
		if h.HTTPGetPort != 0 {
			fmt.Fprintf(w, "  %-10s%d\n", "GET Port:", h.HTTPGetPort)
		}
		fmt.Fprintln(w)
	}
}

func deviceLeaves() []admLeaf {
	return []admLeaf{
		leaf("device", "add", "<hostname> <devid> [--status=alive]",
			"Add a device to a host. Device ids are chosen by you and never reused.", []string{"hostname", "devid"},
			[]string{"mogway adm device add storage1 16", "mogway adm device add storage1 dev17 --status=down"},
			func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
				status := fs.String("status", "alive", "initial state: alive or down")
				return func(ctx context.Context, a *admin, pos []string) error {
					id, err := parseDevID(pos[1])
					if err != nil {
						return err
					}
					if err := a.p.CreateDevice(ctx, pos[0], id, *status); err != nil {
						return trackerError("device add", err)
					}
					return a.ok("Device added.")
				}
			}),
		leaf("device", "mark", "<hostname> <devid> <status>",
			"Change a device's state: alive, down, dead, readonly or drain.", []string{"hostname", "devid", "status"},
			[]string{"mogway adm device mark storage1 16 readonly"},
			noFlags(func(ctx context.Context, a *admin, pos []string) error {
				id, err := parseDevID(pos[1])
				if err != nil {
					return err
				}
				if err := a.p.SetState(ctx, pos[0], id, pos[2]); err != nil {
					return trackerError("device mark", err)
				}
				return a.ok("Device updated.")
			})),
		leaf("device", "modify", "<hostname> <devid> [--status=S] [--weight=N]",
			"Change a device's state or read weight.", []string{"hostname", "devid"},
			[]string{"mogway adm device modify storage1 16 --weight=50"},
			func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
				status := fs.String("status", "", "new state: alive, down, dead, readonly or drain")
				weight := fs.Int("weight", -1, "new read weight (0 or more)")
				return func(ctx context.Context, a *admin, pos []string) error {
					id, err := parseDevID(pos[1])
					if err != nil {
						return err
					}
					if *status == "" && *weight < 0 {
						return fmt.Errorf("device modify: give --status or --weight")
					}
					if *status != "" {
						if err := a.p.SetState(ctx, pos[0], id, *status); err != nil {
							return trackerError("device modify", err)
						}
					}
					if *weight >= 0 {
						if err := a.p.SetWeight(ctx, pos[0], id, *weight); err != nil {
							return trackerError("device modify", err)
						}
					}
					return a.ok("Device updated.")
				}
			}),
		leaf("device", "list", "[--all]", "List devices per host with their usage; dead ones only with --all.", nil,
			[]string{"mogway adm device list --all"},
			func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
				all := fs.Bool("all", false, "include dead devices")
				return func(ctx context.Context, a *admin, _ []string) error {
					hosts, err := a.p.GetHosts(ctx)
					if err != nil {
						return trackerError("device list", err)
					}
					devs, err := a.p.GetDevices(ctx)
					if err != nil {
						return trackerError("device list", err)
					}
					printDeviceList(a.e.stdout, hosts, devs, *all)
					return nil
				}
			}),
		deviceSummaryLeaf(),
	}
}

// printDeviceList prints devices grouped by host, in mogadm's "device list" layout.
func printDeviceList(w io.Writer, hosts []client.Host, devs []client.Device, all bool) {
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
	sort.Slice(devs, func(i, j int) bool { return devs[i].ID < devs[j].ID })
	gib := func(mb int64) float64 { return float64(max(mb, 0)) / 1024 }
	for _, h := range hosts {
		fmt.Fprintf(w, "%s [%d]: %s\n", h.Name, h.ID, h.Status)
		fmt.Fprintf(w, "%6s  %-10s %10s %10s %10s %10s\n", "", "", "used(G)", "free(G)", "total(G)", "weight(%)")
		for _, d := range devs {
			if d.HostID != h.ID || d.Status == "dead" && !all {
				continue
			}
			fmt.Fprintf(w, "%6s: %-10s %10.3f %10.3f %10.3f %10d\n", "dev"+strconv.FormatInt(d.ID, 10), d.Status,
				gib(d.MBUsed), gib(d.MBTotal)-gib(d.MBUsed), gib(d.MBTotal), d.Weight)
		}
		fmt.Fprintln(w)
	}
}

func domainLeaves() []admLeaf {
	return []admLeaf{
		leaf("domain", "add", "<domain>", "Add a domain (a key namespace).", []string{"domain"},
			[]string{"mogway adm domain add photos"},
			noFlags(func(ctx context.Context, a *admin, pos []string) error {
				if err := a.p.CreateDomain(ctx, pos[0]); err != nil {
					return trackerError("domain add", err)
				}
				return a.ok("Domain created.")
			})),
		leaf("domain", "delete", "<domain>", "Delete a domain that has no files and no classes but default.", []string{"domain"},
			[]string{"mogway adm domain delete photos"},
			noFlags(func(ctx context.Context, a *admin, pos []string) error {
				if err := a.p.DeleteDomain(ctx, pos[0]); err != nil {
					return trackerError("domain delete", err)
				}
				return a.ok("Domain deleted.")
			})),
		leaf("domain", "list", "", "List domains and their classes.", nil, []string{"mogway adm domain list"},
			noFlags(listDomains)),
	}
}

func listDomains(ctx context.Context, a *admin, _ []string) error {
	doms, err := a.p.GetDomains(ctx)
	if err != nil {
		return trackerError("list", err)
	}
	printDomainList(a.e.stdout, doms)
	return nil
}

// printDomainList prints domains and classes sorted by name, in mogadm's "domain list" layout.
func printDomainList(w io.Writer, doms []client.Domain) {
	sort.Slice(doms, func(i, j int) bool { return doms[i].Name < doms[j].Name })
	fmt.Fprintf(w, " %-20s %-20s %-13s %-20s %-8s\n", "domain", "class", "mindevcount", "replpolicy", "hashtype")
	fmt.Fprintf(w, "%s %s %s %s %s\n", strings.Repeat("-", 21), strings.Repeat("-", 20), strings.Repeat("-", 13),
		strings.Repeat("-", 20), strings.Repeat("-", 8))
	for _, d := range doms {
		cs := append([]client.Class(nil), d.Classes...)
		sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
		for _, c := range cs {
			fmt.Fprintf(w, " %-20s %-20s %-13d %-20s %-8s\n", d.Name, c.Name, c.MinDevCount, c.ReplPolicy, c.HashType)
		}
		fmt.Fprintln(w)
	}
}

func classLeaves() []admLeaf {
	classFlags := func(fs *flag.FlagSet, c *client.ClassSpec) {
		fs.IntVar(&c.MinDevCount, "mindevcount", 0, "minimum number of copies (default 2; modify resets it to 2 when left out, as mogadm does)")
		fs.StringVar(&c.ReplPolicy, "replpolicy", "", "replication policy, e.g. MultipleHosts() or MultipleHosts(3)")
		fs.StringVar(&c.HashType, "hashtype", "", "checksum kept for files of the class: MD5, SHA-1 or NONE")
	}
	classRun := func(verb string, modify bool) func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
		return func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
			var c client.ClassSpec
			classFlags(fs, &c)
			return func(ctx context.Context, a *admin, pos []string) error {
				c.Domain, c.Class = pos[0], pos[1]
				if c.MinDevCount == 0 {
					c.MinDevCount = 2
				}
				var err error
				if modify {
					err = a.p.ModifyClass(ctx, c)
				} else {
					err = a.p.CreateClass(ctx, c)
				}
				if err != nil {
					return trackerError("class "+verb, err)
				}
				if modify {
					return a.ok("Class updated.")
				}
				return a.ok("Class created.")
			}
		}
	}
	return []admLeaf{
		leaf("class", "add", "<domain> <class> [--mindevcount=2] [--replpolicy=P] [--hashtype=H]",
			"Add a file class to a domain.", []string{"domain", "class"},
			[]string{"mogway adm class add photos thumbs --mindevcount=3", "mogway adm class add photos orig --hashtype=MD5"},
			classRun("add", false)),
		leaf("class", "modify", "<domain> <class> [--mindevcount=2] [--replpolicy=P] [--hashtype=H]",
			"Change a class's copy count, policy or hash type.", []string{"domain", "class"},
			[]string{"mogway adm class modify photos thumbs --mindevcount=2"},
			classRun("modify", true)),
		leaf("class", "delete", "<domain> <class>", "Delete a class that has no files.", []string{"domain", "class"},
			[]string{"mogway adm class delete photos thumbs"},
			noFlags(func(ctx context.Context, a *admin, pos []string) error {
				if err := a.p.DeleteClass(ctx, pos[0], pos[1]); err != nil {
					return trackerError("class delete", err)
				}
				return a.ok("Class deleted.")
			})),
		leaf("class", "list", "", "List classes of every domain.", nil, []string{"mogway adm class list"},
			noFlags(listDomains)),
	}
}

func settingsLeaves() []admLeaf {
	return []admLeaf{
		leaf("settings", "list", "", "List server settings.", nil, []string{"mogway adm settings list"},
			noFlags(func(ctx context.Context, a *admin, _ []string) error {
				ss, err := a.p.ServerSettings(ctx)
				if err != nil {
					return trackerError("settings list", err)
				}
				printSettings(a.e.stdout, ss)
				return nil
			})),
		leaf("settings", "set", "<key> <value>", "Set a server setting; the tracker checks key and value.",
			[]string{"key", "value"}, []string{"mogway adm settings set skip_mkcol on"},
			noFlags(func(ctx context.Context, a *admin, pos []string) error {
				if err := a.p.SetServerSetting(ctx, pos[0], pos[1]); err != nil {
					return trackerError("settings set", err)
				}
				return a.ok("Setting updated.")
			})),
	}
}

// printSettings prints "key = value" lines sorted by key, keys right-aligned as mogadm does.
func printSettings(w io.Writer, ss []client.Setting) {
	sort.Slice(ss, func(i, j int) bool { return ss[i].Key < ss[j].Key })
	for _, s := range ss {
		fmt.Fprintf(w, "%25s = %s\n", s.Key, s.Value)
	}
}
