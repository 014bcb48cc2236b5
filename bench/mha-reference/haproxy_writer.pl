#!/usr/bin/perl
# For `npm run bench:vs-mha --only proxy-*` only: the master_ip_failover_script and master_ip_online_change_script
# an MHA 0.58 user writes for an HAProxy writer backend, making the runtime-API calls mha's routing steps make.
#   haproxy_writer.pl --api=HOST:PORT --backend=NAME --command=status|stop|stopssh|start --orig_master_ip=IP [--new_master_ip=IP] ...
# stop/stopssh: the old master in maint and its sessions through the proxy shut (MHA: before the failover's
#               recovery, or before the switchover's write block).
# start:        every other server in maint, then the new master ready (MHA: after the new master is promoted).
# status:       the proxy answers and its backend has the master.
# Servers are found by address in `show servers state`. MHA passes more arguments (users, ssh, passwords): ignored.
use strict;
use warnings;
use IO::Socket::INET;

my %opt;
for (@ARGV) {
  if (/^--([^=]+)=(.*)$/s) { $opt{$1} = $2 }
  elsif (/^--(.+)$/) { $opt{$1} = 1 }
}
my $api     = $opt{api}     or die "haproxy_writer.pl: --api=HOST:PORT is required\n";
my $backend = $opt{backend} or die "haproxy_writer.pl: --backend=NAME is required\n";
my $command = $opt{command} // '';

# One runtime-API command per connection (the API's non-interactive mode): its whole answer.
sub api {
  my ($line) = @_;
  my $sock = IO::Socket::INET->new(PeerAddr => $api, Proto => 'tcp', Timeout => 3) or die "haproxy_writer.pl: $api: $!\n";
  print $sock "$line\n";
  local $/;
  my $answer = <$sock> // '';
  close $sock;
  die "haproxy_writer.pl: $line: $answer" if $answer =~ /^(Unknown|No such|Require|Invalid)/m;
  return $answer;
}

# name => address, from "be_id be_name srv_id srv_name srv_addr ..." lines.
sub servers {
  my %by_addr;
  for (split /\n/, api("show servers state $backend")) {
    my @f = split / /;
    next unless @f > 4 && $f[1] eq $backend;
    $by_addr{$f[4]} = $f[3];
  }
  return %by_addr;
}

my %name_of = servers();
my $orig = $opt{orig_master_ip} // '';
my $new  = $opt{new_master_ip}  // '';

if ($command eq 'status') {
  exists $name_of{$orig} or die "haproxy_writer.pl: $orig is not in backend $backend\n";
}
elsif ($command eq 'stop' || $command eq 'stopssh') {
  my $name = $name_of{$orig} or die "haproxy_writer.pl: $orig is not in backend $backend\n";
  api("set server $backend/$name state maint");
  api("shutdown sessions server $backend/$name");
}
elsif ($command eq 'start') {
  my $name = $name_of{$new} or die "haproxy_writer.pl: $new is not in backend $backend\n";
  for my $addr (keys %name_of) {
    api("set server $backend/$name_of{$addr} state maint") unless $addr eq $new;
  }
  api("set server $backend/$name state ready");
}
else {
  die "haproxy_writer.pl: unknown --command=$command\n";
}
exit 0;
