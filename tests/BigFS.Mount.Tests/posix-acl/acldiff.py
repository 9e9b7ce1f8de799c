"""POSIX ACLs through a mount against the same steps on a local filesystem (ext4).

usage: acldiff.py LOCAL_DIR MOUNT_DIR   (as root; setpriv runs the checks as other users)
Runs one sequence in each folder: access ACLs enforced for the owning group, a named user
and others; chmod moving the mask; the umask with no default ACL; default ACLs inherited by
files, fifos and directories (the umask then ignored). Prints each step's outcome and exits
1 if any differs between the two.
"""
import os, struct, subprocess, sys
U,UN,G,GN,M,O=1,2,4,8,0x10,0x20
def acl(entries): return struct.pack('<I',2)+b''.join(struct.pack('<HHI',t,p,i) for t,p,i in entries)
def show(v):
    if v is None: return None
    return [struct.unpack_from('<HHI',v,4+8*i) for i in range((len(v)-4)//8)]
def getx(p,n):
    try: return show(os.getxattr(p,n))
    except OSError as e: return 'E%d'%e.errno
def as_user(uid,gid,cmd):
    return subprocess.run(['setpriv',f'--reuid={uid}',f'--regid={gid}','--clear-groups','sh','-c',cmd],capture_output=True).returncode==0
def run(root):
    out=[]
    d=root+'/acl'; subprocess.run(['rm','-rf',d]); os.mkdir(d); os.chmod(d,0o777)
    # 1. access ACL enforced: owning group r--, named user rw-, mask rw-
    f=d+'/f'; open(f,'w').write('x'); os.chown(f,1000,1000); os.chmod(f,0o640)
    os.setxattr(f,'system.posix_acl_access',acl([(U,6,0xffffffff),(UN,6,1001),(G,4,0xffffffff),(M,6,0xffffffff),(O,0,0xffffffff)]))
    out.append(('mode',oct(os.stat(f).st_mode)))
    out.append(('group member writes',as_user(1002,1000,f'echo y >> {f}')))
    out.append(('named user writes',as_user(1001,1001,f'echo y >> {f}')))
    out.append(('other reads',as_user(1003,1003,f'cat {f}')))
    # 2. chmod moves the mask
    os.chmod(f,0o600); out.append(('after chmod',oct(os.stat(f).st_mode),getx(f,'system.posix_acl_access')))
    out.append(('named user writes after chmod 600',as_user(1001,1001,f'echo y >> {f}')))
    # 3. umask without a default ACL
    old=os.umask(0o027)
    os.mkdir(d+'/plain'); open(d+'/plain/f','w').close(); os.mknod(d+'/plain/fifo',0o666|0o010000)
    out += [('umask '+n,oct(os.stat(d+'/plain/'+n).st_mode),getx(d+'/plain/'+n,'system.posix_acl_access')) for n in ['f','fifo']]
    out.append(('umask dir',oct(os.stat(d+'/plain').st_mode)))
    # 4. default ACL inherited; the umask is not applied
    dd=d+'/inh'; os.mkdir(dd,0o755)
    os.setxattr(dd,'system.posix_acl_default',acl([(U,7,0xffffffff),(UN,5,1001),(G,5,0xffffffff),(M,7,0xffffffff),(O,1,0xffffffff)]))
    os.umask(0o077)
    open(dd+'/f','w').close(); os.mkdir(dd+'/sub',0o750); os.symlink('f',dd+'/ln')
    fd=os.open(dd+'/g',os.O_CREAT|os.O_WRONLY,0o600); os.close(fd)
    for n in ['f','g','sub']:
        p=dd+'/'+n
        out.append(('inherit '+n,oct(os.stat(p).st_mode),getx(p,'system.posix_acl_access'),getx(p,'system.posix_acl_default')))
    out.append(('inherit sub/x', (open(dd+'/sub/x','w').close(), oct(os.stat(dd+'/sub/x').st_mode))[1], getx(dd+'/sub/x','system.posix_acl_access')))
    out.append(('named user writes inherited f',as_user(1001,1001,f'echo y >> {dd}/f')))
    # only-base default ACL: the access ACL is the mode, not stored
    d3=d+'/base'; os.mkdir(d3); os.setxattr(d3,'system.posix_acl_default',acl([(U,7,0xffffffff),(G,5,0xffffffff),(O,5,0xffffffff)]))
    open(d3+'/f','w').close(); out.append(('base default',oct(os.stat(d3+'/f').st_mode),getx(d3+'/f','system.posix_acl_access')))
    os.umask(old)
    return out
local, mounted = run(sys.argv[1]), run(sys.argv[2])
bad = 0
for m, l in zip(mounted, local):
    if m != l:
        bad += 1
        print('DIFFERS:', m, ' local:', l)
    else:
        print('same:   ', m)
print('differences:', bad)
sys.exit(1 if bad or len(local) != len(mounted) else 0)
